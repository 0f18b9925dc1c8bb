"""The complete metadata of the engine's tables (``ccm.models`` and its modules), for
Alembic's autogenerate and the models-match-migrations test."""
from ccm.models import Base

__all__ = ["Base"]
