"""Broker catalogs (shared/CHECKLIST.md, "Brokers (v2)"): pure, cited data.

Each broker's catalog says which of the five access-point codes it offers and
what it calls them, which ``broker_mfa`` values it offers, which access points
suit each task, what to do when the phone with the second factor is lost, and
how long its API sessions or tokens live (with a suggested heartbeat period).

Every fact is cited by a comment naming the broker's own public page right
above it. A fact that could not be found in the broker's own pages is written
generically, commented ``# not found in the broker's own pages (searched: ...)``
and its field is listed in the catalog's ``unsourced``, so a page can say so
rather than present a guess as the broker's word.

Pure standard library plus :mod:`readiness.vocabulary`: no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .vocabulary import ACCESS_POINTS, BROKER_MFA, SUITABLE_ACCESS_POINTS, TASKS

__all__ = [
    "ACCESS_POINT_CODES",
    "BROKERS",
    "BROKER_CODES",
    "BROKER_LABELS",
    "DEFAULT_BROKER",
    "MFA_CODES",
    "MFA_LABELS",
    "BrokerCatalog",
    "catalog_for",
]

DEFAULT_BROKER = "IBKR"
BROKER_CODES: tuple[str, ...] = ("IBKR", "SCHWAB", "TASTYTRADE", "TRADESTATION", "SAXO", "ALPACA", "OTHER")
ACCESS_POINT_CODES: tuple[str, ...] = ("tws", "desktop", "client_portal", "mobile", "api")
# Every broker_mfa value of v2; "ib_key" is IBKR's only, "mobile_push" is
# another broker's own app approval.
MFA_CODES: tuple[str, ...] = tuple(BROKER_MFA)
MFA_LABELS = BROKER_MFA


@dataclass(frozen=True)
class BrokerCatalog:
    """What one broker offers, as its own pages state it (see ``sources``)."""

    code: str
    name: str
    access_points: Mapping[str, str]  # code -> display name, only the codes offered
    mfa: frozenset[str]  # broker_mfa values offered ("none" always allowed)
    suitable: Mapping[str, frozenset[str]]  # task -> suitable codes (full table)
    lost_device_steps: tuple[str, ...]
    support: str
    api_session: str  # plain words
    heartbeat_minutes: int | None  # suggested keep-alive / refresh period
    sources: tuple[str, ...]  # URLs cited
    # Fields written generically because the broker's own pages did not say.
    unsourced: tuple[str, ...] = field(default=())
    # A weekly moment the broker voids sessions, so a fresh login is needed
    # after it: (RFC 5545 weekday, "HH:MM", IANA zone), or None.
    weekly_reset: tuple[str, str, str] | None = None
    # The platform a trader runs that restarts daily at a time they choose, or "".
    daily_restart: str = ""

    def offers(self, access_point: str) -> bool:
        return access_point in self.access_points

    def offers_mfa(self, value: str | None) -> bool:
        """Whether ``value`` may be recorded for this broker (unset always may)."""
        return value is None or value == "none" or value in self.mfa

    def point_name(self, access_point: str) -> str:
        return self.access_points.get(access_point, ACCESS_POINTS.get(access_point, access_point))


def _suitable(offered: Mapping[str, str], **overrides: frozenset[str]) -> Mapping[str, frozenset[str]]:
    """The v1 table, with the broker's differences, kept to the codes it offers."""
    table = {task: frozenset(overrides.get(task, SUITABLE_ACCESS_POINTS[task])) & frozenset(offered) for task in TASKS}
    return MappingProxyType(table)


# --- Interactive Brokers ------------------------------------------------------

_IBKR_POINTS = MappingProxyType(dict(ACCESS_POINTS))  # the v1 names, exactly

IBKR = BrokerCatalog(
    code="IBKR",
    name="Interactive Brokers",
    access_points=_IBKR_POINTS,
    mfa=frozenset(
        {
            # https://www.interactivebrokers.com/campus/ibkr-api-page/third-party-connections/
            # ("Supported 2FA Methods: IB Key ... SMS / Text Messages ... Digital Security Card+ (DSC+)")
            "ib_key",
            "sms",
            # https://ibkr.info/tag/sls?page=8 (Digital Security Card+, a physical device IBKR ships)
            "hardware_key",
            # not found in the broker's own pages (searched: "IBKR authenticator app", "IB Key Handy Key");
            # kept because it is in the v1 table that IBKR's catalog must match.
            "authenticator_app",
            "none",
        }
    ),
    suitable=_suitable(_IBKR_POINTS),  # the v1 table, unchanged
    lost_device_steps=(
        # https://ibkb.interactivebrokers.com/ru/tag/account-security?page=5
        # (migrate IB Key on the new phone; an SMS goes to the number IB Key was activated with,
        # or the physical security device is asked for instead)
        "On the new phone, install IBKR Mobile, log in and choose Migrate IB Key.",
        "Confirm with the text message sent to the phone number you first activated IB Key with (or with your physical security device, if you have one).",
        # https://ibkr.info/node/1943 (notify Customer Service by telephone, identity verified,
        # temporary passcode: 2 days full access, then 10 days restricted Account Management access)
        "If that number is gone too, telephone IBKR Client Services; after checking who you are "
        "they give you a temporary passcode (2 days of full access, then 10 more days of Client Portal only).",
        # https://ibkr.info/tag/account-security?page=4 (online security card lasts 21 days;
        # IBKR will not issue consecutive temporary passcodes)
        "With the temporary passcode, log in to Client Portal and activate an online security code card "
        "(it lasts 21 days); IBKR will not issue a second temporary passcode in a row.",
        "Reactivate IB Key on the new phone (or request a replacement device) before the card expires.",
    ),
    # https://ibkr.info/pt-br/tag/account-security?page=1 ("contacting Client Services through any
    # real-time method (Live Chat or Phone Call) listed under ibkr.com/support")
    support="IBKR Client Services, by live chat or phone, listed at ibkr.com/support",
    # https://interactivebrokers.github.io/cpwebapi/ ("If left inactive a session will timeout within a
    # few minutes. It can be kept alive by calling /portal/sso/validate ... at regular intervals")
    # https://ibkrguides.com/traderworkstation/auto-restart-considerations.htm (daily auto-restart needs
    # manual authentication once a week, after tokens are invalidated each Sunday at 1:00 am ET)
    api_session=(
        "Client Portal API gateway sessions time out within a few minutes without requests, so call "
        "/tickle (or /sso/validate) regularly. TWS and IB Gateway restart daily; with auto-restart they "
        "still need a manual login once a week, after the security tokens are invalidated each Sunday "
        "at 1:00 am ET."
    ),
    # Gatecheck's suggestion: once a minute stays well inside "a few minutes".
    heartbeat_minutes=1,
    sources=(
        "https://www.interactivebrokers.com/campus/ibkr-api-page/third-party-connections/",
        "https://ibkr.info/tag/sls?page=8",
        "https://ibkb.interactivebrokers.com/ru/tag/account-security?page=5",
        "https://ibkr.info/node/1943",
        "https://ibkr.info/tag/account-security?page=4",
        "https://ibkr.info/pt-br/tag/account-security?page=1",
        "https://interactivebrokers.github.io/cpwebapi/",
        "https://ibkrguides.com/traderworkstation/auto-restart-considerations.htm",
        "https://ibkrguides.com/traderworkstation/lock-and-exit.htm",
        "https://ibkrguides.com/ibkrdesktop/login.htm",
    ),
    unsourced=("mfa:authenticator_app",),
    # https://ibkrguides.com/traderworkstation/auto-restart-considerations.htm ("require manual
    # authentication once a week, the first time you log into the platform after the security tokens
    # have been invalidated, a security process that occurs each Sunday at 1:00 am ET")
    weekly_reset=("SU", "01:00", "America/New_York"),
    # https://ibkrguides.com/traderworkstation/lock-and-exit.htm (Global Configuration > Lock and Exit:
    # "Set Auto Log Off Time - Specify a time of day for the system to automatically log off") and
    # https://ibkrguides.com/ibkrdesktop/login.htm ("Auto logoff at... or Auto restart at...")
    daily_restart="TWS or IB Gateway",
)

# --- Charles Schwab -----------------------------------------------------------

_SCHWAB_POINTS = MappingProxyType(
    {
        # not found in the broker's own pages (searched: "schwab.com thinkorswim desktop web mobile
        # platforms"); thinkorswim is named only by third parties in the stored material.
        "tws": "Professional workstation",
        # https://www.schwab.com/content/two-step-authentication ("the SchwabSafe icon located on every
        # Schwab.com page"; logging in to your Schwab account on the web)
        "client_portal": "Schwab.com",
        # https://www.schwab.com/help/rba-intervention-help ("authorize with a mobile notification to the
        # mobile app")
        "mobile": "Schwab mobile app",
        # not found in the broker's own pages (searched: "developer.schwab.com Trader API"); only
        # third-party guides describe Schwab's Trader API.
        "api": "Programmatic API",
        # No lighter desktop app was found in Schwab's pages, so "desktop" is not offered.
    }
)

SCHWAB = BrokerCatalog(
    code="SCHWAB",
    name="Charles Schwab",
    access_points=_SCHWAB_POINTS,
    mfa=frozenset(
        {
            # https://www.schwab.com/content/two-step-authentication (access code by "text message, email,
            # automated phone call, or by directly contacting Schwab")
            "sms",
            "email",
            # https://www.schwab.com/help/public-security-tips-popup ("you'll receive a push notification or
            # one-time security code"); https://www.schwab.com/help/rba-intervention-help ("mobile
            # notification to the mobile app")
            "mobile_push",
            # Security tokens (Symantec VIP) appear only in third-party and advisor-only pages
            # (searched: "schwab.com security token VIP Access"), so they are not offered here.
            "none",
        }
    ),
    # Only "tws" is a desktop workstation here, so complex orders suit it alone.
    suitable=_suitable(_SCHWAB_POINTS),
    lost_device_steps=(
        # https://www.schwab.com/help/rba-intervention-help ("Schwab will call" / "Schwab will text" a
        # Security Code; or "enter a PIN number provided to you by a Schwab representative")
        'At the login check, choose "Schwab will call" or "Schwab will text" to get a security code on another phone number on file.',
        "If no number on file reaches you, call Schwab at 888-999-4512 (from abroad: your country's "
        "international toll-free access number, then 888-999-4512); a representative can give you a PIN "
        "to enter instead.",
        # https://international.schwab.com/security-guarantee ("Report any unauthorized transactions to us as
        # quickly as possible ... contact us immediately")
        "If you think someone else has the phone, report it and any unauthorized activity to Schwab at once.",
    ),
    # https://www.schwab.com/help/rba-intervention-help ("please contact us at 888-999-4512")
    support="Schwab by phone at 888-999-4512 (from abroad: international toll-free access number, then 888-999-4512)",
    # not found in the broker's own pages (searched: "developer.schwab.com Trader API access token refresh
    # token expires"); third-party libraries state 30-minute access and 7-day refresh tokens.
    api_session="Token lifetimes are not stated in Schwab's own pages we could find; check the Schwab developer portal.",
    heartbeat_minutes=None,
    sources=(
        "https://www.schwab.com/content/two-step-authentication",
        "https://www.schwab.com/help/public-security-tips-popup",
        "https://www.schwab.com/help/rba-intervention-help",
        "https://international.schwab.com/security-guarantee",
    ),
    unsourced=("access_points:tws", "access_points:api", "api_session", "heartbeat_minutes"),
)

# --- tastytrade ---------------------------------------------------------------

_TASTY_POINTS = MappingProxyType(
    {
        # https://tastyworks.freshdesk.com/support/solutions/articles/43000435186-recent-release-notes
        # ("four unified mediums ... the desktop platform, mobile applications, web browser trading, and
        # tablet app. The desktop application will act as your mission control")
        # One desktop app, so it is "desktop"; no separate professional workstation ("tws").
        "desktop": "tastytrade desktop platform",
        "client_portal": "tastytrade web platform",
        "mobile": "tastytrade mobile app",
        # https://developer.tastytrade.com/docs/authentication/oauth2
        "api": "tastytrade API",
    }
)

TASTYTRADE = BrokerCatalog(
    code="TASTYTRADE",
    name="tastytrade",
    access_points=_TASTY_POINTS,
    mfa=frozenset(
        {
            # https://support.tastyworks.com/support/solutions/articles/43000561685-two-factor-authentication-via-sms
            # (SMS-2FA, and "if you're looking to enable 2FA using an Authenticator App instead")
            "sms",
            "authenticator_app",
            "none",
        }
    ),
    # No "tws": complex orders go on the desktop platform.
    suitable=_suitable(_TASTY_POINTS),
    # not found in the broker's own pages (searched: "tastytrade lost phone 2FA", "tastytrade disable 2FA
    # change mobile number"); the SMS article has such sections but their text is not in the stored copy.
    lost_device_steps=(
        "Contact tastytrade support (Help Center, Contact Us) and ask how to reset your second factor.",
        "Expect to prove who you are before they change the phone number or authenticator on the account.",
        "Once back in, set up two-factor authentication again on the new phone.",
    ),
    # https://support.tastyworks.com/support/solutions ("Account Management ... Contact Us")
    support="tastytrade Help Center, Account Management > Contact Us (support.tastyworks.com)",
    # https://developer.tastytrade.com/docs/authentication/oauth2 ("All API users must use OAuth2 ... A
    # 15-minute access token"; the 24-hour session-token flow was decommissioned)
    api_session=(
        "OAuth2 access tokens last 15 minutes; refresh them with the refresh token before they run out. The old 24-hour session tokens are no longer accepted."
    ),
    # Gatecheck's suggestion: refresh every 10 minutes, inside the 15-minute lifetime.
    heartbeat_minutes=10,
    sources=(
        "https://tastyworks.freshdesk.com/support/solutions/articles/43000435186-recent-release-notes",
        "https://support.tastyworks.com/support/solutions/articles/43000561685-two-factor-authentication-via-sms",
        "https://support.tastyworks.com/support/solutions",
        "https://developer.tastytrade.com/docs/authentication/oauth2",
    ),
    unsourced=("lost_device_steps",),
)

# --- TradeStation -------------------------------------------------------------

_TS_POINTS = MappingProxyType(
    {
        # https://www.tradestation.com/faq/general-account/ ("the award-winning TradeStation desktop, web
        # trading and mobile apps")
        "tws": "TradeStation desktop",
        # https://www.tradestation.com/faq/equity-platform/ ("Log in to the TradeStation Client Center and
        # select the Customer Profile tab")
        "client_portal": "TradeStation Client Center",
        # https://www.tradestation.com/faq/equity-platform/ ("The TradeStation Web Trading and TradeStation
        # Mobile apps also allow you to place trades")
        "mobile": "TradeStation Mobile",
        # https://api.tradestation.com/docs/fundamentals/authentication/refresh-tokens/
        "api": "TradeStation API",
        # No lighter desktop app was found, so "desktop" is not offered.
    }
)

TRADESTATION = BrokerCatalog(
    code="TRADESTATION",
    name="TradeStation",
    access_points=_TS_POINTS,
    mfa=frozenset(
        {
            # https://www.tradestation.com/faq/two-step-verification/ ("register a Symantec VIP Access
            # credential or token. You can choose between software or hardware credentials")
            "authenticator_app",  # the VIP Access software credential
            "hardware_key",  # the VIP hardware token
            "none",
        }
    ),
    suitable=_suitable(_TS_POINTS),
    # not found in the broker's own pages (searched: "TradeStation two-step verification lost phone VIP
    # credential replace"); the FAQ explains enrolment only.
    lost_device_steps=(
        "Call TradeStation Client Services and ask them to remove the lost VIP credential from your login.",
        "Expect to prove who you are before they do.",
        "Register a new VIP Access credential under Customer Profile > Security & Passwords > Two-Step Verification in the Client Center.",
    ),
    # https://www.tradestation.com/faq/equity-platform/ ("a phone call to our Client Services department")
    support="TradeStation Client Services (see the Contact Us page on tradestation.com)",
    # https://api.tradestation.com/docs/fundamentals/authentication/refresh-tokens/ ("Access Tokens have a
    # lifetime of 20 minutes ... Refresh Tokens ... valid indefinitely" by default; rotating refresh tokens
    # have "a 24-hour absolute lifetime")
    api_session=(
        "Access tokens last 20 minutes; get a new one with the refresh token as each nears expiry. Refresh "
        "tokens last indefinitely by default; if rotating refresh tokens are turned on, you must sign in "
        "again every 24 hours."
    ),
    # Gatecheck's suggestion: refresh every 15 minutes, inside the 20-minute lifetime.
    heartbeat_minutes=15,
    sources=(
        "https://www.tradestation.com/faq/general-account/",
        "https://www.tradestation.com/faq/equity-platform/",
        "https://www.tradestation.com/faq/two-step-verification/",
        "https://api.tradestation.com/docs/fundamentals/authentication/refresh-tokens/",
    ),
    unsourced=("lost_device_steps",),
)

# --- Saxo ---------------------------------------------------------------------

_SAXO_POINTS = MappingProxyType(
    {
        # https://www.help.saxo/hc/en-us/articles/5362008924701-Adding-a-trusted-device-to-your-Saxo-account
        # ("SaxoTrader: ...", "SaxoInvestor: ...", "SaxoTrader for desktop: ...", "the Saxo app")
        "tws": "SaxoTrader for desktop",
        "client_portal": "SaxoTrader",
        "mobile": "Saxo app",
        # https://developer.saxo/openapi/learn/security ("All Saxo Bank's OpenAPI endpoints ...")
        "api": "Saxo OpenAPI",
        # No lighter desktop app, so "desktop" is not offered.
    }
)

SAXO = BrokerCatalog(
    code="SAXO",
    name="Saxo",
    access_points=_SAXO_POINTS,
    mfa=frozenset(
        {
            # https://www.help.saxo/hc/en-us/articles/5362008924701-Adding-a-trusted-device-to-your-Saxo-account
            # ("Approve the login by clicking the push notification ... verification code sent to you by SMS")
            "mobile_push",
            "sms",
            # https://www.help.saxo/hc/en-sg/articles/360038307372-Add-extra-security-to-your-Saxo-account-login-using-an-Authenticator
            "authenticator_app",
            "none",
        }
    ),
    suitable=_suitable(_SAXO_POINTS),
    lost_device_steps=(
        # https://www.help.saxo/hc/en-us/articles/5362008924701-Adding-a-trusted-device-to-your-Saxo-account
        # (Login & System Info > Manage devices; replacing and removing trusted devices)
        "From a device you still trust, remove the lost phone: Login & System Info > Manage devices.",
        # https://www.help.saxo/hc/en-au/articles/360024068992-How-do-I-update-my-phone-number-email-address-or-name
        # ("If you do not have access to platform anymore, please go through Forgot password process and you
        # will be provided with the Change mobile link")
        "If you cannot log in at all, use Forgot password on home.saxo; it gives you a Change mobile link.",
        # https://www.help.saxo/hc/en-sg/articles/360038307372-Add-extra-security-to-your-Saxo-account-login-using-an-Authenticator
        # ("If you have lost or changed your mobile phone number, please contact Client Account Services")
        "If you lost the phone number too, contact Saxo Client Account Services to register your new number.",
        # https://www.help.saxo/hc/en-us/articles/5362008924701-Adding-a-trusted-device-to-your-Saxo-account
        # ("To get push notifications, you must first enable face ID, fingerprint or device PIN on your Saxo app")
        "On the new phone, install the Saxo app and turn on Face ID, fingerprint or a device PIN to get push approvals.",
    ),
    # https://www.help.saxo/hc/en-sg/articles/360038307372-Add-extra-security-to-your-Saxo-account-login-using-an-Authenticator
    support="Saxo Client Account Services (Contact us in the Saxo help centre, help.saxo)",
    # https://developer.saxo/openapi/learn/security ("the 'OpenAPI token' feature on the developer portal ...
    # Each token is valid for 24 hours"); https://developer.saxo/openapi/learn/certificate-based-authentication
    # ("a refresh token, so it can keep the OpenAPI session alive")
    # not found in the broker's own pages: the access-token lifetime of the OAuth flows (searched:
    # "developer.saxo access token expires refresh token lifetime").
    api_session=(
        "Every OpenAPI call needs an OAuth access token; keep the session alive with the refresh token "
        "rather than logging in again. Developer-portal test tokens last 24 hours."
    ),
    heartbeat_minutes=None,
    sources=(
        "https://www.help.saxo/hc/en-us/articles/5362008924701-Adding-a-trusted-device-to-your-Saxo-account",
        "https://www.help.saxo/hc/en-sg/articles/360038307372-Add-extra-security-to-your-Saxo-account-login-using-an-Authenticator",
        "https://www.help.saxo/hc/en-au/articles/360024068992-How-do-I-update-my-phone-number-email-address-or-name",
        "https://developer.saxo/openapi/learn/security",
        "https://developer.saxo/openapi/learn/certificate-based-authentication",
    ),
    unsourced=("heartbeat_minutes",),
)

# --- Alpaca -------------------------------------------------------------------

_ALPACA_POINTS = MappingProxyType(
    {
        # https://alpaca.markets/docs/registering-your-app ("The OAuth Apps page is accessible from the
        # dashboard, which requires you to login to your Alpaca brokerage account")
        "client_portal": "Alpaca dashboard",
        # Alpaca's Customer Agreement: "The Platform is accessed via website (the "Website") and mobile
        # application (the "App")" -- read only in a copy hosted at
        # https://scribd.com/document/668846478/Acc-Tapp-Margin-and-Cus-Tag-Mt, not on Alpaca's own site.
        "mobile": "Alpaca mobile app",
        # https://docs.alpaca.markets/reference ("Every private API call requires key-based authentication")
        "api": "Alpaca Trading API",
        # No desktop application was found, so neither "tws" nor "desktop" is offered.
    }
)

ALPACA = BrokerCatalog(
    code="ALPACA",
    name="Alpaca",
    access_points=_ALPACA_POINTS,
    # not found in the broker's own pages (searched: "Alpaca two-factor authentication MFA dashboard",
    # "support.alpaca.markets 2FA"); generic: every value but the other brokers' own (ib_key, mobile_push).
    mfa=frozenset({"hardware_key", "authenticator_app", "sms", "email", "none"}),
    # No desktop app: Gatecheck's judgement puts complex orders on the dashboard or the API.
    suitable=_suitable(_ALPACA_POINTS, complex_orders=frozenset({"client_portal", "api"})),
    # not found in the broker's own pages (searched: "Alpaca lost phone 2FA reset", "Alpaca account locked
    # lost access").
    lost_device_steps=(
        "E-mail Alpaca support from the address on your account and ask them to reset your second factor.",
        "Expect to prove who you are before they do.",
        "Once back in, set up the second factor again on the new phone and regenerate any API keys kept on it.",
    ),
    # https://support.alpaca.markets/hc/en-us/articles/360011047851-Checking-Your-Application-Status/subscription.html
    # ("please contact us at support@alpaca.markets")
    support="Alpaca support by e-mail at support@alpaca.markets",
    # https://docs.alpaca.markets/reference (API key ID and secret in the APCA-API-KEY-ID and
    # APCA-API-SECRET-KEY headers); https://github.com/alpacahq/alpaca-docs/blob/30010df7599a16f97f2ee78ed04931b70fa13d78/content/api-references/oauth/_index.md
    # (the OAuth token response has no expiry; tokens are revoked with DELETE /v1/oauth/token/{token_id})
    api_session=(
        "Calls carry an API key ID and secret key in headers; no expiry is stated for keys or OAuth tokens, "
        "which last until revoked or regenerated, so no keep-alive is needed."
    ),
    heartbeat_minutes=None,
    sources=(
        "https://alpaca.markets/docs/registering-your-app",
        "https://docs.alpaca.markets/reference",
        "https://github.com/alpacahq/alpaca-docs/blob/30010df7599a16f97f2ee78ed04931b70fa13d78/content/api-references/oauth/_index.md",
        "https://support.alpaca.markets/hc/en-us/articles/360011047851-Checking-Your-Application-Status/subscription.html",
    ),
    unsourced=("access_points:mobile", "mfa", "lost_device_steps"),
)

# --- Any other broker ---------------------------------------------------------

_OTHER_POINTS = MappingProxyType(
    {
        "tws": "Professional workstation",
        "desktop": "Desktop app",
        "client_portal": "Web portal",
        "mobile": "Mobile app",
        "api": "Programmatic API",
    }
)

OTHER = BrokerCatalog(
    code="OTHER",
    name="Other broker",
    access_points=_OTHER_POINTS,
    mfa=frozenset(MFA_CODES),
    suitable=_suitable(_OTHER_POINTS),
    lost_device_steps=(
        "Use a backup second factor (another phone, a hardware key or backup codes) to log in.",
        "If you have none, contact your broker's support and ask them to reset your second factor.",
        "Once back in, remove the lost phone and set up the second factor on the new one.",
    ),
    support="Your broker's support desk (see its website)",
    api_session="Check your broker's API documentation for how long sessions or tokens last.",
    heartbeat_minutes=None,
    # CHECKLIST.md "Brokers (v2)" asks for generic names and every value here.
    sources=("shared/CHECKLIST.md, section Brokers (v2): generic names, every code and value; no broker facts",),
    unsourced=("lost_device_steps", "support", "api_session"),
)

BROKERS: Mapping[str, BrokerCatalog] = MappingProxyType({c.code: c for c in (IBKR, SCHWAB, TASTYTRADE, TRADESTATION, SAXO, ALPACA, OTHER)})
BROKER_LABELS = MappingProxyType({code: c.name for code, c in BROKERS.items()})


def catalog_for(code: str | None) -> BrokerCatalog:
    """The catalog of ``code``: IBKR when unset (the default), OTHER when unknown."""
    if not code:
        return BROKERS[DEFAULT_BROKER]
    return BROKERS.get(code.strip().upper(), OTHER)
