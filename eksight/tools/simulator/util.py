"""Small deterministic helpers: time in integer microseconds, RFC 3339 stamps, time zones with daylight saving,
and the random identifiers AWS and Kubernetes use (auditIDs, instance ids, access keys, pod suffixes).

Everything random takes a `random.Random`; nothing reads the clock, the environment or global state, so the
same seed always gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import SupportsLenAndGetItem

T = TypeVar("T")

US = 1_000_000  # microseconds per second
MINUTE, HOUR, DAY = 60 * US, 3600 * US, 86400 * US

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_K8S = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.String alphabet (no vowels, no 0/1/3)
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"


class FastRandom(random.Random):
    """random.Random with cheaper randrange/choice (one float draw each; the tiny bias is irrelevant here)."""

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if stop is None:
            return int(self.random() * start)
        return start + int(self.random() * (stop - start))

    def choice(self, seq: SupportsLenAndGetItem[T]) -> T:
        return seq[int(self.random() * len(seq))]


def seeded(seed: int, name: str) -> FastRandom:
    """An independent stream per component, so adding one component never shifts another's randomness."""
    return FastRandom(f"eksight-sim/{seed}/{name}")


# --- time ---------------------------------------------------------------------------------------------------


def parse_day(text: str) -> int:
    day = date.fromisoformat(text[:10])
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * US


_prefix_cache: dict[int, str] = {}
_SECONDS = [f"{n:02d}." for n in range(60)]


def iso(t: int) -> str:
    """RFC 3339 with microseconds, the way the API server writes stageTimestamp."""
    minute = t // MINUTE
    prefix = _prefix_cache.get(minute)
    if prefix is None:
        if len(_prefix_cache) > 50_000:
            _prefix_cache.clear()
        prefix = _prefix_cache[minute] = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
    rest = t - minute * MINUTE
    return f"{prefix}{_SECONDS[rest // US]}{rest % US:06d}Z"


def iso_seconds(t: int) -> str:
    return datetime.fromtimestamp(t // US, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def weekday(t: int) -> int:
    return datetime.fromtimestamp(t // US, UTC).weekday()


# Time zones: (standard UTC offset in hours, daylight-saving rule). Rules are written out (not read from the
# system's tz database) so output does not depend on the machine.
ZONES: dict[str, tuple[float, str]] = {
    "America/New_York": (-5, "us"),
    "America/Chicago": (-6, "us"),
    "America/Denver": (-7, "us"),
    "America/Los_Angeles": (-8, "us"),
    "Europe/London": (0, "eu"),
    "Europe/Dublin": (0, "eu"),
    "Europe/Berlin": (1, "eu"),
    "Europe/Warsaw": (1, "eu"),
    "Europe/Madrid": (1, "eu"),
    "Europe/Helsinki": (2, "eu"),
    "Asia/Kolkata": (5.5, ""),
    "Asia/Singapore": (8, ""),
    "America/Sao_Paulo": (-3, ""),
    "Asia/Tokyo": (9, ""),
}


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (6 - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_sunday(year: int, month: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _utc(day: date, hour: float) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * US + hour * HOUR)


def dst_transitions(zone: str, year: int) -> tuple[int, int] | None:
    """(start, end) of daylight saving time in `year` as UTC microseconds, or None."""
    standard, rule = ZONES[zone]
    if rule == "us":  # 2nd Sunday of March 02:00 local standard time → 1st Sunday of November 02:00 DST
        return _utc(_nth_sunday(year, 3, 2), 2 - standard), _utc(_nth_sunday(year, 11, 1), 1 - standard)
    if rule == "eu":  # last Sunday of March 01:00 UTC → last Sunday of October 01:00 UTC
        return _utc(_last_sunday(year, 3), 1), _utc(_last_sunday(year, 10), 1)
    return None


def utc_offset(zone: str, t: int) -> int:
    """The zone's UTC offset at `t`, in microseconds."""
    standard, _ = ZONES[zone]
    year = datetime.fromtimestamp(t // US, UTC).year
    window = dst_transitions(zone, year)
    summer = window is not None and window[0] <= t < window[1]
    return int((standard + (1 if summer else 0)) * HOUR)


def local_midnight(zone: str, t: int) -> int:
    """UTC time of the local midnight starting the local day that contains `t`."""
    offset = utc_offset(zone, t)
    local = t + offset
    return local - local % DAY - offset


# --- identifiers -----------------------------------------------------------------------------------------------


def uuid4(rng: random.Random) -> str:
    s = f"{rng.getrandbits(128):032x}"
    return f"{s[:8]}-{s[8:12]}-4{s[13:16]}-{'89ab'[int(s[16], 16) & 3]}{s[17:20]}-{s[20:]}"


def hexstr(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def k8s_suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice(_K8S) for _ in range(n))


def lower_alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_LOWER) for _ in range(n))


def b32(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_B32) for _ in range(n))


def role_id(rng: random.Random) -> str:
    """IAM role unique id (AROA…), as in principalId and the authenticator uid."""
    return "AROA" + b32(rng, 17)


def session_key(rng: random.Random) -> str:
    """STS temporary access key id."""
    return "ASIA" + b32(rng, 16)


def instance_id(rng: random.Random) -> str:
    return "i-0" + hexstr(rng, 16)


def git_sha(rng: random.Random) -> str:
    return hexstr(rng, 7)


def stable_hash(text: str) -> int:
    """FNV-1a: a string hash that, unlike hash(), does not change between processes."""
    h = 0xCBF29CE484222325
    for ch in text.encode():
        h = ((h ^ ch) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# --- addresses -------------------------------------------------------------------------------------------------


def ip_str(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def ip_int(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return a << 24 | b << 16 | c << 8 | d


def node_name(ip: str, region: str) -> str:
    """EC2 private DNS name: us-east-1 uses ec2.internal, other regions <region>.compute.internal."""
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{ip.replace('.', '-')}.{domain}"


def pick_time(
    rng: random.Random, lo: int, hi: int, accept: Callable[[int], bool] | None = None, tries: int = 400
) -> int:
    """A uniform time in [lo, hi) that `accept` likes (the first of `tries` samples), else any."""
    if hi <= lo:
        return lo
    first = None
    for _ in range(tries):
        t = rng.randrange(lo, hi)
        first = t if first is None else first
        if accept is None or accept(t):
            return t
    return first if first is not None else lo


# --- certificate signing requests ---------------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def _oid(text: str) -> bytes:
    parts = [int(p) for p in text.split(".")]
    body = bytearray((40 * parts[0] + parts[1],))
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return _der(0x06, bytes(body))


def _integer(value: bytes) -> bytes:
    value = value.lstrip(b"\x00") or b"\x00"
    return _der(0x02, (b"\x00" + value) if value[0] & 0x80 else value)


def csr_request(rng: random.Random, common_name: str, organizations: tuple[str, ...]) -> str:
    """`spec.request` of a CertificateSigningRequest: base64 of a PEM PKCS#10 request for an ECDSA P-256 key
    with subject O=<organizations>, CN=<common_name> (key and signature are random bytes)."""
    import base64

    rdns = [_der(0x31, _der(0x30, _oid("2.5.4.10") + _der(0x0C, org.encode()))) for org in organizations]
    rdns.append(_der(0x31, _der(0x30, _oid("2.5.4.3") + _der(0x0C, common_name.encode()))))
    subject = _der(0x30, b"".join(rdns))
    key = bytes([4]) + rng.getrandbits(512).to_bytes(64, "big")
    spki = _der(0x30, _der(0x30, _oid("1.2.840.10045.2.1") + _oid("1.2.840.10045.3.1.7")) + _der(0x03, b"\x00" + key))
    info = _der(0x30, _integer(b"\x00") + subject + spki + b"\xa0\x00")
    signature = _der(
        0x30, _integer(rng.getrandbits(256).to_bytes(32, "big")) + _integer(rng.getrandbits(256).to_bytes(32, "big"))
    )
    der = _der(0x30, info + _der(0x30, _oid("1.2.840.10045.4.3.2")) + _der(0x03, b"\x00" + signature))
    body = base64.b64encode(der).decode()
    pem = (
        "-----BEGIN CERTIFICATE REQUEST-----\n"
        + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        + "\n-----END CERTIFICATE REQUEST-----\n"
    )
    return base64.b64encode(pem.encode()).decode()
