"""Racer models: upload, validate, scan, store, download, retention."""
