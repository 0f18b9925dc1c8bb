"""Template authoring and the template store, below the runs that render what it holds:
versions in the database, the workflow (draft → in review → approved → retired,
maker-checker), the save-time checks (every problem with line and column), the audit log,
and the library files that seed the store.

- ``store``: versions, the library sync, the versions a run pins (``load_pinned``);
- ``workflow``: ``save_draft``, ``submit``, ``approve``, ``reject``, ``retire``;
- ``validation``: ``validate``; ``queries``: ``list_templates``, ``show``, ``diff``,
  ``template_history``; ``audit``: the audit log.

Previews and proofs render through the runs and live above them (``ccm.previews``).
"""
from ccm.authoring.audit import record as audit
from ccm.authoring.checks import Library, email_parts
from ccm.authoring.editing import check_source
from ccm.authoring.context import SAMPLE_EVENT, SAMPLE_HELPERS, SAMPLE_LINKS, sample_context
from ccm.authoring.problems import Problem, errors
from ccm.authoring.queries import diff, list_templates, show, template_history
from ccm.authoring.store import (BLOCK_KINDS, PinnedTemplates, TemplateStoreError, effective_versions, get_version, load_pinned,
                                 library, read_manifest, sync_library, sync_library_checked)
from ccm.authoring.typst_checks import prune_typst_roots, renderer_for
from ccm.authoring.workflow import (KINDS, MakerChecker, ValidationFailed, WorkflowError, approve, check, reject, retire, save_draft,
                                    submit)

__all__ = [
    "SAMPLE_EVENT", "SAMPLE_HELPERS", "SAMPLE_LINKS", "Library", "email_parts", "errors", "library", "sample_context",
    "BLOCK_KINDS", "KINDS", "MakerChecker", "PinnedTemplates", "Problem", "TemplateStoreError", "ValidationFailed", "WorkflowError",
    "approve", "audit", "check", "check_source", "diff", "effective_versions", "get_version", "list_templates", "load_pinned", "read_manifest",
    "prune_typst_roots", "reject", "renderer_for", "retire", "save_draft", "show", "submit", "sync_library", "sync_library_checked", "template_history",
]
