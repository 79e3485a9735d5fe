"""Tests of the admin pages and API."""
