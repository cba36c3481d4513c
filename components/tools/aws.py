"""Sessions, clients and names the AWS tools share.

Credentials come from boto3's usual chain (environment, `--profile`, SSO, instance roles). The endpoint
follows boto3's own `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, which is how the tests
point every client at a local moto server: the tools carry no test switch of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from components.errors import EnvironmentBlocked, InputError, Problem

CLIENT_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32)

CREDENTIALS_FIX = (
    "no AWS credentials found. Give the tool credentials for the account the stack deploys to: "
    "`aws configure sso` (or `aws sso login --profile P`) and pass --profile P, or export "
    "AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; check with `aws sts get-caller-identity`"
)


def model_bucket_name(project: str, stack: str, account_id: str) -> str:
    """The model bucket of a stack: `<project>-<stack>-models-<account id>` (ModelStorage names it so).

    The account id makes the name unique per account, so another account can only hold it by squatting.
    """
    return f"{project}-{stack}-models-{account_id}".lower()


def replica_bucket_name(model_bucket: str, region: str) -> str:
    """The model bucket's replica in `region` (storage.replicas): `<model bucket>-<region>` (ModelReplica)."""
    return f"{model_bucket}-{region}"


class Clients:
    """boto3 clients of one session, created once per service; `overrides` replaces some (tests: Stubber)."""

    def __init__(self, session: boto3.Session, overrides: Mapping[str, Any] | None = None) -> None:
        self.session = session
        self._clients: dict[str, Any] = dict(overrides or {})

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=CLIENT_CONFIG)
        return self._clients[service]


def _open_clients(profile: str | None, region: str) -> Clients:
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise InputError(
            Problem(path="--profile", message=f"{exc}; profiles are listed by `aws configure list-profiles`")
        ) from exc
    return Clients(session)


# Replaced in tests to hand in a session whose clients are stubbed or hooked.
open_clients: Callable[[str | None, str], Clients] = _open_clients


def caller_identity(clients: Clients) -> dict[str, str]:
    """STS get-caller-identity; EnvironmentBlocked (exit 3) with the fix when credentials are missing or bad."""
    try:
        answer = clients("sts").get_caller_identity()
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
        raise EnvironmentBlocked(f"{exc}: {CREDENTIALS_FIX}") from exc
    except botocore.exceptions.TokenRetrievalError as exc:
        raise EnvironmentBlocked(f"{exc}: the SSO session expired; run `aws sso login` and retry") from exc
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        raise EnvironmentBlocked(
            f"AWS refused the credentials ({code}: {exc.response.get('Error', {}).get('Message', '')}); "
            "they are wrong or expired: " + CREDENTIALS_FIX
        ) from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise EnvironmentBlocked(f"cannot reach AWS STS ({exc}); check the network, proxy and region") from exc
    return {"account": answer["Account"], "arn": answer["Arn"], "user_id": answer.get("UserId", "")}


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
