"""Previews and proofs of templates as the customer will see them (e-mail HTML and text,
PDF pages, SMS segments), for a sample or a real customer, rendered through the same
composition as a run; proofs go to a seed list."""
from ccm.previews.preview import Bundle, PreviewError, compose, render_bundle, sms_json, write_preview
from ccm.previews.proofs import ProofError, seed_list, send_proof

__all__ = ["Bundle", "PreviewError", "ProofError", "compose", "render_bundle", "seed_list", "send_proof", "sms_json", "write_preview"]
