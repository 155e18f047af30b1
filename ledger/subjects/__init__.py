"""Subjects: the pseudonymous buyers reports are about."""
