"""API keys, roles, review-page sessions and sign-in, security headers, reporter pseudonyms.

Roles: `intake` (photo assessment, enterprise scoring), `reviewer` (review queue, decisions,
the /review page) and `admin` (model reload; may do everything). Reviewer and admin keys belong
to a named person. Modules by concern: `secrets` (server secrets, pseudonyms), `keys` (keys and
their holders, the cached `KeyStore`), `key_table` (the `api_keys` table in the review store's
database, the old keys file's one-time import), `sessions` (signed sessions, CSRF tokens),
`sign_in` (the HTML sign-in), `middleware` (`ApiKeyAuth`), `headers` (`SecurityHeaders`). Every part takes a
`serving.settings.ServingSettings` (or fields of it); none reads the environment itself.
"""

from serving.auth.headers import SecurityHeaders
from serving.auth.keys import (
    KeyStore,
    Principal,
    StoredKey,
    new_key,
    parse_env_keys,
)
from serving.auth.middleware import ANONYMOUS, ApiKeyAuth, require_role
from serving.auth.roles import PERSONAL_ROLES, ROLES, required_role, role_allows
from serving.auth.secrets import Pseudonymiser
from serving.auth.sessions import SessionSigner
from serving.auth.sign_in import FailureLimiter

__all__ = [
    "ANONYMOUS",
    "ApiKeyAuth",
    "FailureLimiter",
    "KeyStore",
    "PERSONAL_ROLES",
    "Principal",
    "Pseudonymiser",
    "ROLES",
    "SecurityHeaders",
    "SessionSigner",
    "StoredKey",
    "new_key",
    "parse_env_keys",
    "required_role",
    "require_role",
    "role_allows",
]
