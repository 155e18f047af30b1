"""Disputes a buyer opens, through a member, against reports on them."""
