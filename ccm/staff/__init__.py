"""The engine's staff: users, roles made of ``area:action`` permissions, signing in (with
lockout and an optional TOTP second factor), personal tokens for the CLI, service accounts with API keys, and the audit log
of everything staff do. The console (``ccm.web.console``) and the CLI use what is named here.
"""
from ccm.staff.audit import AuditFilter, facets, record, search
from ccm.staff.passwords import totp_uri
from ccm.staff.permissions import BUILT_IN_ROLES, PERMISSIONS, SYSTEM_ROLES, UnknownPermission, check_permission, grants
from ccm.staff.service_accounts import Caller, NewKey, api_caller, create_key, create_service_account, list_keys, revoke_key
from ccm.staff.users import (SignIn, Staff, as_staff, UserError, confirm_password, confirm_totp, create_user, get_staff, issue_token,
                             list_roles, list_users, remove_totp, revoke_token, seed_roles, set_active, set_password,
                             set_preferences, set_role_permissions, set_roles, sign_in, sign_in_code, staff_for_token, start_totp)

__all__ = [
    "Caller", "NewKey", "api_caller", "create_key", "create_service_account", "list_keys", "revoke_key",
    "BUILT_IN_ROLES", "PERMISSIONS", "SYSTEM_ROLES", "AuditFilter", "SignIn", "Staff", "UnknownPermission", "UserError", "as_staff", "check_permission",
    "confirm_password", "confirm_totp", "create_user", "facets", "get_staff", "grants", "issue_token", "list_roles",
    "list_users", "record", "remove_totp", "revoke_token", "search", "seed_roles", "set_active", "set_password",
    "set_preferences", "set_role_permissions", "set_roles", "sign_in", "sign_in_code", "staff_for_token", "start_totp", "totp_uri",
]
