"""Tests for the offline provider sandbox."""
