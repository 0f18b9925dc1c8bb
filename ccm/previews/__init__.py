"""Previews and proofs of templates as the customer will see them (e-mail HTML and text,
PDF pages, SMS segments), for a sample or a real customer, rendered through the same
composition as a run; proofs go to a seed list."""
from ccm.previews.preview import Bundle, PreviewError, compose, render_bundle, render_version, sms_json, write_preview
from ccm.previews.proofs import ProofError, seed_list, send_proof
from ccm.previews.unsaved import email_html, keep_preview, kept_part, pdf_pages, pdf_text, render_source
from ccm.previews.usage import where_used, where_used_all

__all__ = ["Bundle", "PreviewError", "ProofError", "compose", "email_html", "keep_preview", "kept_part", "pdf_pages", "pdf_text", "render_bundle",
           "render_source", "render_version", "seed_list", "send_proof", "sms_json", "where_used", "where_used_all", "write_preview"]
