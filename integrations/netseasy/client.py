"""Thin Nets Easy wrapper: the raw secret key in ``Authorization``, JSON in, JSON out, typed errors.

Nets documents no rate limit; we pace gently per merchant key (through the shared, database-backed
pacing) and, after a 429, every worker pauses for that key and tries again with a growing pause.
Everything here is a read, so a lost answer never leaves anything half-done at Nets.
"""

from __future__ import annotations

import hashlib
import logging
import time

import requests
from django.conf import settings

from wording import Msg

from .. import ratelimit
from ..base import AuthError, ConnectorError, RemoteValidationError, RetryableError
from ..http import make_session, redact

logger = logging.getLogger("kontera.netseasy")

PACE = ratelimit.Pace(limit=50, window=1.0)
MAX_RATE_RETRIES = 3
FIRST_PAUSE = 1.0  # seconds after the first 429 (no Retry-After from Nets); doubles each time
PAGE_SIZE = 100
MAX_PAGES = 1000  # a guard against a server that never stops paging


class NotFound(RemoteValidationError):
    pass


class NetsEasyClient:
    def __init__(self, secret_key: str, *, session: requests.Session | None = None, base_url: str | None = None,
                 sleep=time.sleep):
        if not secret_key:
            raise AuthError(Msg("No Nets Easy secret key is stored. Paste the live secret key on the settings page."))
        self._secret_key = secret_key
        self.session = session or make_session()
        self.base_url = (base_url or settings.NETS_EASY_API_URL).rstrip("/")
        self._sleep = sleep

    def __repr__(self) -> str:  # never show the key, not even in a traceback's locals
        return f"<NetsEasyClient {self.base_url}>"

    @property
    def rate_key(self) -> str:
        # A digest, so the pacing table never holds the key itself.
        return "netseasy:" + hashlib.sha256(self._secret_key.encode()).hexdigest()[:16]

    def get(self, path: str, **params) -> dict:
        url = f"{self.base_url}/{path.lstrip('/')}"
        pause = FIRST_PAUSE
        for _attempt in range(MAX_RATE_RETRIES + 1):
            ratelimit.acquire(self.rate_key, PACE, sleep=self._sleep)
            try:
                response = self.session.get(url, params=params or None,
                                            headers={"Authorization": self._secret_key, "Accept": "application/json"})
            except requests.RequestException as exc:
                raise RetryableError(Msg("No answer from Nets Easy (%(error)s).", error=exc.__class__.__name__)) \
                    from None
            if response.status_code == 429:
                wait = _retry_after(response) or pause
                ratelimit.pause(self.rate_key, wait)
                logger.warning("Nets Easy 429 on %s; pausing %.1f s", path, wait)
                pause *= 2
                continue
            return self._result(response)
        raise RetryableError(Msg("Nets Easy kept answering 429 (too many requests)."), retry_after=pause,
                             http_status=429)

    def _result(self, response: requests.Response) -> dict:
        status = response.status_code
        if status < 300:
            try:
                return response.json() or {}
            except ValueError:
                raise RetryableError(Msg("Nets Easy sent an answer that is not JSON."), http_status=status) from None
        if status == 401:
            raise AuthError(Msg("Nets Easy does not accept the secret key. Check that it is the live secret key "
                              "from the Nets Easy portal (not a checkout key) and paste it again."), http_status=401)
        if status == 403:
            raise AuthError(Msg("Nets Easy refuses access to this merchant's reports with this key."), http_status=403)
        if status == 404:
            raise NotFound(Msg("Nets Easy does not know this id."), http_status=404)
        if status >= 500:
            raise RetryableError(Msg("Nets Easy had an internal error (%(status)s).", status=status),
                                 http_status=status)
        if 400 <= status < 500:
            raise RemoteValidationError(Msg("Nets Easy refused the request: %(errors)s", errors=_errors_text(response)), http_status=status)
        raise ConnectorError(redact(response.text[:300]), http_status=status)

    # --- endpoints --------------------------------------------------------------------------

    def list_payouts(self, from_date, to_date, *, currency: str | None = None) -> list[dict]:
        """Every payout between the dates (inclusive), all pages (``pageNumber`` is zero-based)."""
        params = {"fromDate": from_date.isoformat(), "toDate": to_date.isoformat(), "pageSize": PAGE_SIZE}
        if currency:
            params["currency"] = currency
        payouts: list[dict] = []
        for page in range(MAX_PAGES):
            body = self.get("report/v1/payouts", **params, pageNumber=page)
            batch = body.get("payouts") or []
            payouts.extend(batch)
            total = body.get("numberOfPayouts")
            if not batch or (isinstance(total, int) and len(payouts) >= total) or len(batch) < PAGE_SIZE:
                return payouts
        raise RetryableError(Msg("Nets Easy kept sending more pages of payouts; stopped."))

    def payout_details(self, payout_id: str) -> dict:
        """One payout with every payment action, all pages merged into ``paymentActions``."""
        details: dict | None = None
        actions: list[dict] = []
        for page in range(MAX_PAGES):
            body = self.get(f"report/v1/payouts/{payout_id}", pageNumber=page, pageSize=PAGE_SIZE)
            if details is None:
                details = body
            batch = body.get("paymentActions") or []
            actions.extend(batch)
            total = body.get("numberOfPaymentActions")
            if not batch or (isinstance(total, int) and len(actions) >= total) or len(batch) < PAGE_SIZE:
                break
        else:
            raise RetryableError(Msg("Nets Easy kept sending more pages of payment actions; stopped."))
        details = dict(details or {})
        details["paymentActions"] = actions
        return details

    def get_payment(self, payment_id: str) -> dict:
        return self.get(f"v1/payments/{payment_id}")


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _errors_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return redact(response.text[:300]) or str(response.status_code)
    errors = (body or {}).get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in errors.items())
    return redact(str(body)[:300])
