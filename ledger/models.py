"""Every model, imported once so that ``metadata`` is complete (alembic reads it)."""

from ledger.db import Base
from ledger.members.models import Client, Member, User

metadata = Base.metadata

__all__ = ["Client", "Member", "User", "metadata"]
