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
from ccm.authoring.problems import Problem
from ccm.authoring.store import (BLOCK_KINDS, PinnedTemplates, TemplateStoreError, effective_versions, load_pinned, read_manifest,
                                 sync_library, sync_library_checked)

__all__ = ["BLOCK_KINDS", "PinnedTemplates", "Problem", "TemplateStoreError", "effective_versions", "load_pinned", "read_manifest",
           "sync_library", "sync_library_checked"]
