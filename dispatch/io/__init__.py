"""Readers and writers of the project's file formats."""
