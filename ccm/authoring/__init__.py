"""Template authoring: versions, the approval workflow, validation, preview and proofs.

The engine functions the CLI and (later) the web UI call:

- ``workflow``: ``save_draft``, ``submit``, ``approve``, ``reject``, ``retire``;
- ``validation``: ``validate`` (every problem with line and column);
- ``preview``: ``render_bundle``, ``write_preview``; ``proofs``: ``send_proof``;
- ``queries``: ``list_templates``, ``show``, ``diff``, ``template_history``;
- ``audit``: the audit log.
"""
from ccm.authoring.problems import Problem

__all__ = ["Problem"]
