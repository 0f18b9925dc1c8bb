"""Every module that defines models, imported so ``Base.metadata`` is complete (Alembic's
autogenerate and the models-match-migrations test use it). Add a line per new module."""
from ccm import models  # noqa: F401
from ccm.decisions import models as decision_models  # noqa: F401
from ccm.segments import models as segment_models  # noqa: F401
from ccm.authoring import models as authoring_models  # noqa: F401
from ccm.feedback import models as feedback_models  # noqa: F401
from ccm.scheduling import models as scheduling_models  # noqa: F401

from ccm.models import Base

__all__ = ["Base"]
