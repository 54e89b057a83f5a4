"""Which views need a second factor from the last 15 minutes (SECURITY.md 16).

The one place the step-up policy is declared. MFARequiredMiddleware applies
it to every request from a verified session, and a test checks that it names
every view in the URLconf, so that a new view cannot go without a decision.
A view it does not name needs a fresh code: the policy fails closed.

Views marked ``@public`` or ``@pending_login_allowed`` never reach it.
"""

from __future__ import annotations

RECENT = "recent"  # a code from the last 15 minutes, asked for again on GET and POST
NONE = "none"  # a verified session is enough

STEP_UP: dict[str, str] = {
    # Sign-in and the security page. Ending sessions only takes access away.
    "accounts:step_up": NONE,
    # A superuser's read-only view of the task worker and scheduler.
    "background": NONE,
    "accounts:security": NONE,
    "accounts:session_end": NONE,
    "accounts:sessions_end_others": NONE,
    "accounts:trusted_browser_forget": NONE,
    # An API token is a credential that outlives the session: making one
    # needs a fresh code; revoking one only takes access away.
    "accounts:api_token_add": RECENT,
    # Alert channels: where alerts go is a security setting (adding one sends
    # your notices somewhere new; removing or narrowing one silences alarms).
    "accounts:alerts": NONE,  # the list, masked
    "accounts:alert_channel_add": RECENT,
    "accounts:alert_channel_events": RECENT,
    "accounts:alert_channel_remove": RECENT,
    "accounts:alert_channel_test": NONE,
    "accounts:api_token_shown": NONE,
    "accounts:api_token_revoke": NONE,
    "accounts:authenticator_add": RECENT,
    "accounts:authenticator_rename": RECENT,
    "accounts:authenticator_remove": RECENT,
    "accounts:backup_codes": RECENT,
    # Passkeys: adding, naming and removing one is a factor change. The
    # registration API answers the add page's script in JSON, so it checks
    # for a verified session and a recent code itself (check_can_register in
    # accounts.passkey_views) rather than redirecting the script to step-up.
    "accounts:passkey_add": RECENT,
    "accounts:passkey_rename": RECENT,
    "accounts:passkey_remove": RECENT,
    "otp_webauthn:credential-registration-begin": NONE,
    "otp_webauthn:credential-registration-complete": NONE,
    "accounts:backup_codes_shown": NONE,
    "accounts:password_change": RECENT,
    # Where security notices and reset links go: a change is a security change.
    "accounts:email_change": RECENT,
    "accounts:email_verification_resend": NONE,
    "accounts:email_banner_hide": NONE,  # a cookie that hides a reminder for a day
    # The inventory: every write to a device, recovery method, key or
    # automation (an automation holds a key reference and a fail-safe).
    "devices:device_list": NONE,
    "devices:device_add": RECENT,
    "devices:device_edit": RECENT,
    "devices:device_delete": RECENT,
    "devices:device_report_lost": RECENT,
    "devices:device_mark_revoked": RECENT,
    "devices:device_mark_found": RECENT,
    "devices:device_mark_validated": RECENT,
    "devices:recovery_list": NONE,
    "devices:recovery_add": RECENT,
    "devices:recovery_edit": RECENT,
    "devices:recovery_delete": RECENT,
    "devices:recovery_mark_verified": RECENT,
    "devices:key_list": NONE,
    "devices:key_add": RECENT,
    "devices:key_edit": RECENT,
    "devices:key_delete": RECENT,
    "devices:key_mark_rotated": RECENT,
    "devices:key_revoke": RECENT,
    "devices:automation_list": NONE,
    "devices:automation_add": RECENT,
    "devices:automation_edit": RECENT,
    "devices:automation_delete": RECENT,
    "devices:automation_pause": RECENT,
    "devices:automation_resume": RECENT,
    # A heartbeat's ping token is a credential of the bot's.
    "devices:automation_heartbeat": RECENT,
    "devices:automation_heartbeat_rotate": RECENT,
    "devices:automation_heartbeat_token": NONE,
    "devices:automation_heartbeat_delete": RECENT,
    # The ping key reaches every bot of the trader: a credential too.
    "devices:ping_key_rotate": RECENT,
    "devices:ping_key_shown": NONE,
    "checklist:inventory_export": NONE,
    # Uploading only stages the file in the session; replacing needs the code.
    "checklist:inventory_import": NONE,
    "checklist:inventory_import_confirm": RECENT,
    # The desk: exports and MFA resets. Saying "I'm on it" only claims work.
    "desk:incident_ack": NONE,
    "desk:dashboard": NONE,
    "desk:export": RECENT,
    "desk:trader_detail": NONE,
    "desk:trader_remind": NONE,
    "desk:trader_mfa_reset": RECENT,
    # Shows the code of the reset just made, once; nothing to show otherwise.
    "desk:trader_enrolment_code": NONE,
    # A firm's people (issue 22): bringing someone in, sending a working
    # link, taking someone off a desk or deactivating them need a fresh code;
    # revoking an invitation and ticking a leaver item only take access away
    # or record work done.
    "desk:invitations": NONE,
    "desk:invite": RECENT,
    "desk:invitation_resend": RECENT,
    "desk:invitation_revoke": NONE,
    "desk:trader_remove": RECENT,
    "desk:trader_deactivate": RECENT,
    "desk:leavers": NONE,
    "desk:leaver_item_done": NONE,
    # Single sign-on: linking an identity to one's account is a new way in.
    "accounts:sso_link": RECENT,
    "accounts:sso_unlink": NONE,
    # Readiness inputs. A new calendar token is a credential; turning the
    # feed off only takes access away.
    "checklist:dashboard": NONE,
    "checklist:profile": NONE,
    "checklist:calendar_rotate": RECENT,
    "checklist:calendar_revoke": NONE,
    "checklist:calendar_token": NONE,
    "checklist:subscription_list": NONE,
    "checklist:subscription_add": NONE,
    "checklist:subscription_edit": NONE,
    "checklist:subscription_delete": RECENT,
    "checklist:drill_list": NONE,
    "checklist:drill_start": NONE,
    "checklist:drill_detail": NONE,
    "checklist:drill_step": NONE,
    "checklist:drill_finish": NONE,
    "checklist:drill_abandon": NONE,
    # Permissions: a record of what the account may trade, like market data.
    "checklist:permission_list": NONE,
    "checklist:permission_add": NONE,
    "checklist:permission_edit": NONE,
    "checklist:permission_delete": RECENT,
    "checklist:risk_list": NONE,
    "checklist:risk_accept": NONE,
    "checklist:risk_withdraw": NONE,
    "checklist:recovery_card": NONE,
    "checklist:api_readiness": NONE,
    "checklist:api_inventory": NONE,
    # The admin: a password set there is a password change.
    "admin:auth_user_password_change": RECENT,
}

# Whole namespaces decided at once: the admin's generated views are read-only
# for leads, and superusers' writes are audited by the model admins.
NAMESPACES: dict[str, str] = {"admin": NONE}


def step_up_policy(view_name: str) -> str:
    """The policy of a view, by its namespaced URL name."""
    if view_name in STEP_UP:
        return STEP_UP[view_name]
    namespace, _, _ = view_name.rpartition(":")
    return NAMESPACES.get(namespace, RECENT)
