# ruff: noqa: NPY002  (numba kernels seed and draw from the legacy np.random API)
"""The numba kernel behind :mod:`cemreplay.synth`: the shop, its vocabulary, and one pass
that writes every event of every session into preallocated arrays.

Private: :func:`cemreplay.synth.generate` is the public entry point. Kept apart from the
Python side so that editing one does not recompile the other (numba caches per file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numpy as np
import numpy.typing as npt

from cemreplay._jit import njit
from cemreplay.schema import (
    FINDING_KINDS,
    ClickFlag,
    DeviceClass,
    ErrorSource,
    EventKind,
    NavigationType,
)

#: Kinds of planted struggles (the detectors' kind names).
STRUGGLE_KINDS: Final = FINDING_KINDS
#: Kinds of planted look-alikes no detector may report.
NEGATIVE_KINDS: Final = (
    "negative:stepper",
    "negative:triple_click",
    "negative:double_click",
    "negative:carousel",
)
#: Every kind a truth row can have; a row's kind code is its index here.
KINDS: Final = STRUGGLE_KINDS + NEGATIVE_KINDS


# ----------------------------------------------------------------------------------------------
# The vocabulary: every string the generator writes is a code into _VOCAB.

_VOCAB: list[str] = []
_INDEX: dict[str, int] = {}


def _v(s: str) -> int:
    if s not in _INDEX:
        _INDEX[s] = len(_VOCAB)
        _VOCAB.append(s)
    return _INDEX[s]


# Pages.
_U_HOME = _v("/")
_U_SEARCH = _v("/search")
_CATEGORIES = ("shoes", "jackets", "bags", "outdoor", "kids", "sale", "accessories", "home-goods")
_U_CAT0 = len(_VOCAB)
for _c in _CATEGORIES:
    _v(f"/category/{_c}")
_N_CAT = len(_CATEGORIES)
_N_PRODUCTS = 120
_U_PROD0 = len(_VOCAB)
for _p in range(_N_PRODUCTS):
    _v(f"/product/{1001 + _p}")
_U_CART = _v("/cart")
_U_CHECKOUT = _v("/checkout")
_U_PAYMENT = _v("/checkout/payment")
_U_CONFIRM = _v("/confirmation")

# API endpoints (REQUEST and NETWORK_FAILURE targets).
_A_CART = _v("/api/cart")
_A_PRODUCTS = _v("/api/products")
_A_STOCK = _v("/api/stock")
_A_WISH = _v("/api/wishlist")
_A_COUPON = _v("/api/coupon")
_A_CHECKOUT = _v("/api/checkout")
_A_PAYMENT = _v("/api/payment")
_A_NEWS = _v("/api/newsletter")
_A_SEARCH = _v("/api/search")
_M_GET = _v("GET")
_M_POST = _v("POST")

# Selectors of the elements of the pages.
_S_LOGO = _v("a.logo")
_S_NAVCAT = _v("nav a.category-link")
_S_SEARCH = _v("input#search")
_S_CARTLINK = _v("a.cart-link")
_S_CARD = _v("a.product-card")
_S_FILTER = _v("button.filter-toggle")
_S_SORT = _v("button.sort-select")
_S_LOADMORE = _v("button.load-more")
_S_CAROUSEL = _v("button.carousel-next")
_S_NEWS_EMAIL = _v("input#newsletter-email")
_S_NEWS_SIGNUP = _v("button.newsletter-signup")
_S_IMAGE = _v("img.product-image")
_S_DESC = _v("p.product-description")
_S_SIZE = _v("button.size-option")
_S_QTYM = _v("button.qty-minus")
_S_QTYP = _v("button.qty-plus")
_S_ADD = _v("button.add-to-cart")
_S_WISH = _v("button.wishlist")
_S_SIZEGUIDE = _v("button.size-guide")
_S_REMOVE = _v("button.remove-item")
_S_COUPON = _v("button.apply-coupon")
_S_CHECKOUTBTN = _v("a.checkout-button")
_S_IN0 = len(_VOCAB)  # checkout inputs, in field order
for _s in ("email", "full-name", "phone", "address", "postcode", "city"):
    _v(f"input#{_s}")
_S_CONTINUE = _v("button#continue")
_S_CARDHOLDER = _v("input#cardholder")
_S_PAY = _v("button#pay")
_S_CONTSHOP = _v("a.continue-shopping")

# Form fields (FOCUS/CHANGE/BLUR/VALIDATION_ERROR targets) and forms (SUBMIT targets).
_FIELD_NAMES = (
    "email",
    "full_name",
    "phone",
    "address",
    "postcode",
    "city",
    "cardholder",
    "newsletter_email",
    "q",
)
_F0 = len(_VOCAB)
for _s in _FIELD_NAMES:
    _v(_s)
_FI_PHONE = 2
_FI_EMAIL = 0
_FI_CARDHOLDER = 6
_FI_NEWS = 7
_FI_Q = 8
_FORM_SHIP = _v("form#shipping")
_FORM_PAY = _v("form#payment")
_FORM_NEWS = _v("form#newsletter")
_FORM_SEARCH = _v("form#search")

# Segments: locales with their country and time zones.
_LOCALES = ("nb-NO", "en-US", "de-DE", "sv-SE", "en-GB", "da-DK")
_LOCALE_P = (0.30, 0.20, 0.15, 0.15, 0.10, 0.10)
_COUNTRIES = ("NO", "US", "DE", "SE", "GB", "DK")
_TIMEZONES = (
    ("Europe/Oslo",),
    ("America/New_York", "America/Chicago", "America/Los_Angeles"),
    ("Europe/Berlin",),
    ("Europe/Stockholm",),
    ("Europe/London",),
    ("Europe/Copenhagen",),
)
_LOC_US = 1
_L_LOC0 = len(_VOCAB)
for _s in _LOCALES:
    _v(_s)
_L_CTRY0 = len(_VOCAB)
for _s in _COUNTRIES:
    _v(_s)
_TZ_CODES: list[list[int]] = [[_v(z) for z in zs] for zs in _TIMEZONES]
_K_LOCALE = _v("locale")
_K_TZ = _v("timezone")
_K_COUNTRY = _v("country")
_K_CAMP = _v("utm_campaign")
_K_SRC = _v("utm_source")
_K_MED = _v("utm_medium")

# Campaigns: (utm_campaign, utm_source, utm_medium, referrer or "").
_CAMPAIGNS = (
    ("spring-promo", "google", "cpc", "https://www.google.com/"),
    ("summer-sale", "facebook", "social", "https://www.facebook.com/"),
    ("black-week", "instagram", "social", "https://l.instagram.com/"),
    ("newsletter-weekly", "newsletter", "email", ""),
    ("retargeting", "google", "display", "https://www.google.com/"),
)
_CAMP = np.array(
    [[_v(c), _v(s), _v(m), _v(r) if r else -1] for c, s, m, r in _CAMPAIGNS], dtype=np.int64
)
_ORGANIC_REF = np.array(
    [
        _v("https://www.google.com/"),
        _v("https://www.bing.com/"),
        _v("https://duckduckgo.com/"),
        _v("https://www.facebook.com/"),
        _v("https://www.pinterest.com/"),
    ],
    dtype=np.int64,
)

# Messages.
_MSG_US_PHONE = _v("Enter a valid US phone number")
_MSG_EMAIL = _v("Enter a valid email address")
_JS_SRC = _v("/assets/app.js")
_JS_RESIZE = _v("ResizeObserver loop completed with undelivered notifications")
_JS_MSGS = np.array(
    [
        _v("TypeError: Cannot read properties of undefined (reading 'sku')"),
        _v("TypeError: variant is null"),
        _v("Uncaught (in promise) Error: stock lookup failed"),
    ],
    dtype=np.int64,
)
_MS_CART_ADD = _v("cart_add")
_MS_CHECKOUT = _v("checkout_start")
_MS_ORDER = _v("order_placed")
_MS_NEWS = _v("newsletter_signup")
_STEP_NAMES = ("", "cart", "checkout", "payment")
_STEP_CODES = np.array([-1, _v("cart"), _v("checkout"), _v("payment")], dtype=np.int64)

# Shapes typed into fields: [field, locale, variant]. Variant 0 of a phone is the local
# international form, the one the planted US-only validation rejects.
_EMAILS = ("aaaa.aaaaaa@aaaaa.aaa", "aaaaaaa99@aaaaa.aaa", "a.aaaaaaaa@aaaaaaa.aa")
_PHONES = (
    ("+99 999 99 999", "999 99 999", "99999999"),
    ("+9 999 999 9999", "(999) 999-9999", "999-999-9999"),
    ("+99 999 9999999", "9999 9999999", "99999 999999"),
    ("+99 99 999 99 99", "999-999 99 99", "9999999999"),
    ("+99 9999 999999", "99999 999999", "9999 999 9999"),
    ("+99 99 99 99 99", "99 99 99 99", "99999999"),
)
_POSTCODES = (
    ("9999",) * 3,
    ("99999", "99999", "99999-9999"),
    ("99999",) * 3,
    ("999 99", "99999", "999 99"),
    ("AA9 9AA", "A9 9AA", "AA99 9AA"),
    ("9999",) * 3,
)
_ADDRESSES = ("Aaaaaaaaaaa 99", "Aaaaaaaaaaaaa 9A", "Aaaaaaaaa 999")
_ADDRESSES_US = ("999 Aaaa Aa", "9999 Aaaaaaa Aaa", "99 A Aaaaa Aa")


def _shape_table() -> npt.NDArray[np.int64]:
    out = np.zeros((len(_FIELD_NAMES), len(_LOCALES), 3), dtype=np.int64)
    for li in range(len(_LOCALES)):
        cols = (
            _EMAILS,
            ("Aaaa Aaaaaaa", "Aaaaaa Aaaaa", "Aaaaa Aaaa Aaaaaaaa"),
            _PHONES[li],
            _ADDRESSES_US if li == _LOC_US else _ADDRESSES,
            _POSTCODES[li],
            ("Aaaa", "Aaaaaaaaa", "Aaaaaaa"),
            ("AAAA AAAAAAA", "Aaaaa Aaaaaa", "AAAAAA AAAAA"),
            _EMAILS,
            ("aaaaaa", "aaaa aaaaa", "aaaaaaa aaa"),
        )
        for fi, variants in enumerate(cols):
            for vi, s in enumerate(variants):
                out[fi, li, vi] = _v(s)
    return out


_SHAPES = _shape_table()
_BAD_EMAIL = _v("aaaa.aaaaaa@aaaaa")
_VLEN = np.array([len(s) for s in _VOCAB], dtype=np.int64)  # complete: no _v() below

# ----------------------------------------------------------------------------------------------
# Numeric constants the kernel uses (module ints are compile-time constants in numba).

_PV = int(EventKind.PAGE_VIEW)
_ATTR = int(EventKind.ATTRIBUTE)
_CLICK = int(EventKind.CLICK)
_MOVE = int(EventKind.MOUSE_MOVE)
_SCROLL = int(EventKind.SCROLL)
_FOCUS = int(EventKind.FOCUS)
_BLUR = int(EventKind.BLUR)
_CHANGE = int(EventKind.CHANGE)
_SUBMIT = int(EventKind.SUBMIT)
_VERR = int(EventKind.VALIDATION_ERROR)
_JSERR = int(EventKind.JS_ERROR)
_NETFAIL = int(EventKind.NETWORK_FAILURE)
_MUT = int(EventKind.MUTATION)
_REQ = int(EventKind.REQUEST)
_HIDDEN = int(EventKind.VISIBILITY_HIDDEN)
_VISIBLE = int(EventKind.VISIBILITY_VISIBLE)
_LEAVE = int(EventKind.PAGE_LEAVE)
_MILESTONE = int(EventKind.MILESTONE)
_GEOM = int(EventKind.GEOMETRY)

_INTER = int(ClickFlag.INTERACTIVE)
_TXT = int(ClickFlag.TEXT_INPUT)
_LINK = int(ClickFlag.LINK)
_DESKTOP = int(DeviceClass.DESKTOP)
_NAV_LOAD = int(NavigationType.LOAD)
_NAV_PUSH = int(NavigationType.PUSH)
_NAV_POP = int(NavigationType.POP)
_SRC_NATIVE = int(ErrorSource.NATIVE)
_SRC_ARIA = int(ErrorSource.ARIA)

# Page types.
_PT_HOME, _PT_SEARCH, _PT_CAT, _PT_PROD, _PT_CART, _PT_CHECKOUT, _PT_PAYMENT, _PT_CONFIRM = range(8)

# Truth kind codes (index into KINDS).
(
    _RAGE,
    _DEAD,
    _ERROR,
    _THRASH,
    _XSCROLL,
    _QUICK,
    _FORM_ERROR,
    _FAILED,
    _REFILL,
    _ABANDON,
    _FUNNEL,
    _N_STEPPER,
    _N_TRIPLE,
    _N_DOUBLE,
    _N_CAROUSEL,
) = range(len(KINDS))
_NEWSLETTER_ABANDON = 20  # a browse-slot plant: form_abandon of the newsletter form

# Checkout scenarios.
(
    _SC_NONE,
    _SC_INLINE_ERROR,
    _SC_SUBMIT_FIX,
    _SC_SUBMIT_GIVEUP,
    _SC_REFILL,
    _SC_ABANDON,
    _SC_PAY_HANG,
) = range(7)

# Kernel state slots (one int64 array).
(
    _P,  # events written (may exceed capacity: then the caller retries)
    _TP,  # truth rows written
    _T,  # now, epoch ms
    _CX,  # cursor position
    _CY,
    _MT,  # last MOUSE_MOVE sent: time, x, y
    _MX,
    _MY,
    _SY,  # scroll position, page height, viewport
    _PH,
    _VW,
    _VH,
    _DEV,
    _SDIR,  # last scroll direction on this page view, reversals so far
    _REV,
    _URL,  # current and previous page URL codes
    _PREV,
    _MOUSE,  # 1 when the device has a mouse
    _SESS,
    _PVT,  # time of the current page view
    _PTYPE,
    _CARTV,  # cart value, minor units
    _LOC,
    _LASTFT,  # time of the last FOCUS/CHANGE of a field
    _LCT,  # last click: time, x, y, detail
    _LCX,
    _LCY,
    _LCD,
    _NOSEARCHHOME,  # 1: no search submit from "/" (a newsletter abandon must stay unsent)
    _T0,  # the session's start: event times are stored as int32 offsets from it
    _NST,
) = range(31)

_TRUTH_COLS = 8  # sess, kind, t, url, target, field, dnum, dcode

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    return njit(cache=True)(fn)


#: The array types of the helpers' signatures: the event buffer, the state, the page's
#: elements and the ground truth
_ARRAYS = {"EV": "int32[:, ::1]", "ST": "int64[::1]", "EL": "int64[:, ::1]", "R": "int64[:, ::1]"}


def _typed(sig: str) -> Callable[[_F], _F]:
    """``njit`` with the one signature the helper is called with, compiled when this module
    is imported (or loaded from the cache). Without it numba compiles a called function once
    per distinct set of argument types, and a constant argument is a type of its own
    (``Literal[int](130)``): the generator's kernel compiled 350 functions in 90 s, not 25 in
    half that. ``sig`` is numba's signature syntax with :data:`_ARRAYS`' names for arrays."""
    head, args = sig.split("(", 1)
    names = [a.strip() for a in args.rstrip(")").split(",")]
    full = f"{head}({', '.join(_ARRAYS.get(a, a) for a in names)})"
    return cast(Callable[[_F], _F], cast(Any, njit)(full, cache=True))


def _jit_inline(fn: _F) -> _F:
    """For the smallest helpers, called from many places: inlined where they are called (no
    call, and no compile of their own; see :func:`_typed`)."""
    return njit(cache=True, inline="always")(fn)


# ----------------------------------------------------------------------------------------------
# The kernel. Arguments are typed loosely (Any): numba checks them, mypy cannot.


@_jit_inline
def _ri(lo: int, hi: int) -> int:
    """A random integer in [lo, hi]."""
    return int(np.random.randint(lo, hi + 1))


@_jit_inline
def _wait(st: Any, lo: int, hi: int) -> None:
    st[_T] += _ri(lo, hi)


@_jit_inline
def _emit(ev: Any, st: Any, kind: int, x: int, y: int, a: int, b: int, tg: int, tx: int) -> None:
    p = st[_P]
    if p < ev.shape[1]:
        ev[0, p] = st[_T] - st[_T0]
        ev[1, p] = kind
        ev[2, p] = x
        ev[3, p] = y
        ev[4, p] = a
        ev[5, p] = b
        ev[6, p] = tg
        ev[7, p] = tx
    st[_P] = p + 1


@_jit_inline
def _truth(
    R: Any, st: Any, kind: int, t: int, url: int, target: int, field: int, dnum: int, dcode: int
) -> None:
    p = st[_TP]
    if p < R.shape[0]:
        R[p, 0] = st[_SESS]
        R[p, 1] = kind
        R[p, 2] = t
        R[p, 3] = url
        R[p, 4] = target
        R[p, 5] = field
        R[p, 6] = dnum
        R[p, 7] = dcode
    st[_TP] = p + 1


@_typed("none(EV, ST, i8, i8)")
def _move_to(ev: Any, st: Any, x1: int, y1: int) -> None:
    """A smooth mouse path to (x1, y1): a quadratic Bezier with its control point inside the
    box of the two ends (so x and y never reverse), sampled every 16 ms and sent like the
    snippet does (>= 50 ms and >= 20 px after the last sent move)."""
    if st[_MOUSE] == 0:
        st[_CX] = x1
        st[_CY] = y1
        return
    x0 = float(st[_CX])
    y0 = float(st[_CY])
    dist = np.hypot(x1 - x0, y1 - y0)
    if dist < 2.0:
        return
    dur = 250 + int(dist * (0.3 + 0.4 * np.random.random()))
    dur = min(dur, 1_400)
    cx = x0 + np.random.random() * (x1 - x0)
    cy = y0 + np.random.random() * (y1 - y0)
    t0 = st[_T]
    k = 16
    while k <= dur:
        u = k / dur
        s = u * u * (3.0 - 2.0 * u)
        px = int((1 - s) * (1 - s) * x0 + 2 * (1 - s) * s * cx + s * s * x1)
        py = int((1 - s) * (1 - s) * y0 + 2 * (1 - s) * s * cy + s * s * y1)
        tt = t0 + k
        if tt - st[_MT] >= 50 and np.hypot(px - st[_MX], py - st[_MY]) >= 20.0:
            st[_T] = tt
            _emit(ev, st, _MOVE, px, py, 0, 0, -1, -1)
            st[_MT] = tt
            st[_MX] = px
            st[_MY] = py
        k += 16
    st[_T] = t0 + dur
    st[_CX] = x1
    st[_CY] = y1


@_typed("none(EV, ST)")
def _wander(ev: Any, st: Any) -> None:
    """Move the mouse somewhere on the page and rest (desktop only)."""
    if st[_MOUSE] == 1:
        _move_to(ev, st, _ri(20, st[_VW] - 20), st[_SY] + _ri(60, st[_VH] - 20))
        _wait(st, 400, 1_500)


@_typed("none(EV, ST, i8, i8, i8)")
def _scroll(ev: Any, st: Any, direction: int, steps: int, hi: int) -> None:
    """Up to ``steps`` scrolls in one direction, positions clamped to [0, hi]."""
    for _ in range(steps):
        ny = min(max(st[_SY] + direction * _ri(120, 600), 0), hi)
        if abs(ny - st[_SY]) < 40:
            break
        if st[_SDIR] != 0 and st[_SDIR] != direction:
            st[_REV] += 1
        st[_SDIR] = direction
        _wait(st, 60, 260)
        st[_SY] = ny
        _emit(ev, st, _SCROLL, 0, ny, st[_PH], st[_VH], -1, -1)


@_typed("none(EV, ST)")
def _normal_scroll(ev: Any, st: Any) -> None:
    """A run of scrolls that keeps the page view at <= 3 direction reversals."""
    hi = st[_PH] - st[_VH] - 1_200
    direction = 1
    up = st[_SDIR] == 1 and st[_SY] > 600 and st[_REV] < 3 and np.random.random() < 0.3
    if up or (st[_SDIR] == -1 and st[_REV] >= 3):
        direction = -1
    _scroll(ev, st, direction, _ri(1, 6), hi)


@_jit_inline
def _el(el: Any, n: int, sel: int, x: int, y: int, w: int, h: int, flags: int) -> int:
    el[n, 0] = sel
    el[n, 1] = x
    el[n, 2] = y
    el[n, 3] = w
    el[n, 4] = h
    el[n, 5] = flags
    return n + 1


@_typed("i8(i8, i8, EL)")
def _layout(ptype: int, vw: int, el: Any) -> int:
    """The elements of a page type (selector, box, click flags); returns their count."""
    wide = vw >= 1_000
    cw = vw - 32
    btn = _INTER
    lnk = _INTER | _LINK
    inp = _INTER | _TXT
    n = _el(el, 0, _S_LOGO, 16, 12, 120, 40, lnk)
    n = _el(el, n, _S_NAVCAT, 160, 12, max(min(480, vw - 300), 60), 40, lnk)
    if wide:
        n = _el(el, n, _S_SEARCH, vw - 420, 12, 280, 40, inp)
    else:
        n = _el(el, n, _S_SEARCH, 16, 64, cw, 40, inp)
    n = _el(el, n, _S_CARTLINK, vw - 72, 12, 56, 40, lnk)
    col = 700 if wide else 16
    top = 140 if wide else 700
    if ptype == _PT_HOME:
        n = _el(el, n, _S_CAROUSEL, vw - 72, 380, 48, 48, btn)
        n = _el(el, n, _S_CARD, 16, 720, cw, 900, lnk)
        n = _el(el, n, _S_NEWS_EMAIL, 16, 1_800, min(420, cw), 44, inp)
        n = _el(el, n, _S_NEWS_SIGNUP, 16, 1_856, 160, 44, btn)
    elif ptype in (_PT_SEARCH, _PT_CAT):
        n = _el(el, n, _S_FILTER, 16, 130, 130, 40, btn)
        n = _el(el, n, _S_SORT, 160, 130, 150, 40, btn)
        n = _el(el, n, _S_CARD, 16, 190, cw, 1_500, lnk)
        n = _el(el, n, _S_LOADMORE, vw // 2 - 80, 1_720, 160, 48, btn)
    elif ptype == _PT_PROD:
        n = _el(el, n, _S_IMAGE, 16, 130, min(640, cw), 520, btn)
        n = _el(el, n, _S_SIZE, col, top + 80, 260, 44, btn)
        n = _el(el, n, _S_QTYM, col, top + 150, 44, 44, btn)
        n = _el(el, n, _S_QTYP, col + 100, top + 150, 44, 44, btn)
        n = _el(el, n, _S_ADD, col, top + 220, min(320, cw), 52, btn)
        n = _el(el, n, _S_WISH, col, top + 290, 150, 40, btn)
        n = _el(el, n, _S_SIZEGUIDE, col + 170, top + 290, 150, 40, btn)
        n = _el(el, n, _S_DESC, 16, top + 400, min(640, cw), 240, 0)
        n = _el(el, n, _S_CAROUSEL, vw - 72, top + 760, 48, 48, btn)
        n = _el(el, n, _S_CARD, 16, top + 700, cw, 420, lnk)
    elif ptype == _PT_CART:
        n = _el(el, n, _S_QTYM, col, 200, 44, 44, btn)
        n = _el(el, n, _S_QTYP, col + 100, 200, 44, 44, btn)
        n = _el(el, n, _S_REMOVE, col + 180, 200, 100, 44, btn)
        n = _el(el, n, _S_COUPON, col, 300, 160, 44, btn)
        n = _el(el, n, _S_CHECKOUTBTN, col, 380, min(320, cw), 52, lnk)
    elif ptype == _PT_CHECKOUT:
        for j in range(6):
            n = _el(el, n, _S_IN0 + j, 16, 160 + 70 * j, min(480, cw), 44, inp)
        n = _el(el, n, _S_CONTINUE, 16, 600, min(320, cw), 52, btn)
    elif ptype == _PT_PAYMENT:
        n = _el(el, n, _S_CARDHOLDER, 16, 160, min(480, cw), 44, inp)
        n = _el(el, n, _S_PAY, 16, 400, min(320, cw), 52, btn)
    else:
        n = _el(el, n, _S_CONTSHOP, 16, 500, 240, 44, lnk)
    return n


@_jit_inline
def _find(el: Any, n: int, sel: int) -> int:
    for r in range(n):
        if el[r, 0] == sel:
            return r
    return -1


@_typed("i8(EV, ST, EL, i8, i8, i8, i8)")
def _page_view(ev: Any, st: Any, el: Any, url: int, ptype: int, nav: int, ref: int) -> int:
    """PAGE_VIEW and the GEOMETRY of its interactive elements; resets the page state."""
    _emit(ev, st, _PV, st[_VW], st[_VH], st[_DEV], nav, url, ref)
    st[_PREV] = st[_URL]
    st[_URL] = url
    st[_PTYPE] = ptype
    st[_PVT] = st[_T]
    st[_SY] = 0
    st[_SDIR] = 0
    st[_REV] = 0
    st[_PH] = st[_VH] + _ri(3_000, 8_000)
    n = _layout(ptype, st[_VW], el)
    for r in range(n):
        if el[r, 5] & _INTER:
            _wait(st, 1, 6)
            _emit(ev, st, _GEOM, el[r, 1], el[r, 2], el[r, 3], el[r, 4], el[r, 0], -1)
    return n


@_typed("none(EV, ST, i8, i8, i8, i8)")
def _click_at(ev: Any, st: Any, sel: int, x: int, y: int, flags: int) -> None:
    """A CLICK; ``detail`` counts like the browser (< 500 ms and <= 4 px from the last)."""
    d = 1
    if st[_T] - st[_LCT] < 500 and abs(x - st[_LCX]) <= 4 and abs(y - st[_LCY]) <= 4:
        d = st[_LCD] + 1
    _emit(ev, st, _CLICK, x, y, flags, d, sel, -1)
    st[_LCT] = st[_T]
    st[_LCX] = x
    st[_LCY] = y
    st[_LCD] = d
    st[_CX] = x
    st[_CY] = y


@_typed("none(EV, ST, EL, i8)")
def _click(ev: Any, st: Any, el: Any, r: int) -> None:
    """Move to a point inside element row ``r`` and click it (nothing when ``r`` < 0: the
    element is not on this page, and a negative row must never index the table)."""
    if r < 0:
        return
    x = el[r, 1] + _ri(4, max(5, el[r, 3] - 4))
    y = el[r, 2] + _ri(4, max(5, el[r, 4] - 4))
    _move_to(ev, st, x, y)
    _wait(st, 60, 250)
    _click_at(ev, st, el[r, 0], x, y, el[r, 5])


@_typed("i8(i8)")
def _price(url: int) -> int:
    return 19_900 + ((url - _U_PROD0) * 37 % 50) * 1_000


@_typed("none(EV, ST, i8)")
def _respond(ev: Any, st: Any, sel: int) -> None:
    """The page's answer to an ordinary click on a non-navigating element (< 800 ms)."""
    if sel in (_S_FILTER, _S_SORT, _S_LOADMORE):
        _wait(st, 15, 90)
        _emit(ev, st, _REQ, 0, 0, 0, 0, _A_PRODUCTS, -1)
        _wait(st, 80, 400)
        _emit(ev, st, _MUT, 0, 0, _ri(8, 60), 0, -1, -1)
    elif sel == _S_SIZE:
        _wait(st, 10, 60)
        _emit(ev, st, _MUT, 0, 0, _ri(1, 3), 0, -1, -1)
        _wait(st, 20, 80)
        _emit(ev, st, _REQ, 0, 0, 0, 0, _A_STOCK, -1)
    elif sel in (_S_QTYP, _S_QTYM):
        _wait(st, 15, 90)
        _emit(ev, st, _MUT, 0, 0, _ri(1, 2), 0, -1, -1)
        if st[_PTYPE] == _PT_CART:
            _wait(st, 5, 40)
            _emit(ev, st, _REQ, 0, 0, 0, 0, _A_CART, -1)
    elif sel == _S_ADD:
        _wait(st, 20, 80)
        _emit(ev, st, _REQ, 0, 0, 0, 0, _A_CART, -1)
        _wait(st, 100, 400)
        _emit(ev, st, _MUT, 0, 0, _ri(3, 12), 0, -1, -1)
        _wait(st, 1, 20)
        v = _price(st[_URL])
        st[_CARTV] += v
        _emit(ev, st, _MILESTONE, 0, 0, v, 0, _MS_CART_ADD, -1)
    elif sel == _S_WISH:
        _wait(st, 20, 80)
        _emit(ev, st, _REQ, 0, 0, 0, 0, _A_WISH, -1)
        _wait(st, 50, 200)
        _emit(ev, st, _MUT, 0, 0, _ri(1, 2), 0, -1, -1)
    elif sel == _S_COUPON:
        _wait(st, 20, 80)
        _emit(ev, st, _REQ, 0, 0, 0, 0, _A_COUPON, -1)
        _wait(st, 80, 300)
        _emit(ev, st, _MUT, 0, 0, _ri(1, 3), 0, -1, -1)
    else:  # carousel, image zoom, size guide: a DOM update
        _wait(st, 20, 150)
        _emit(ev, st, _MUT, 0, 0, _ri(1, 30), 0, -1, -1)


@_typed("i8(i8)")
def _clickable(ptype: int) -> int:
    """A random non-navigating element an ordinary visitor clicks on this page type, or -1."""
    r = np.random.randint(0, 8)
    if ptype == _PT_HOME:
        return _S_CAROUSEL
    if ptype in (_PT_SEARCH, _PT_CAT):
        return (_S_FILTER, _S_SORT, _S_LOADMORE)[r % 3]
    if ptype == _PT_PROD:
        return (_S_IMAGE, _S_SIZE, _S_QTYP, _S_CAROUSEL, _S_WISH, _S_SIZEGUIDE, _S_ADD, _S_SIZE)[r]
    if ptype == _PT_CART:
        return (_S_QTYP, _S_QTYM, _S_COUPON)[r % 3]
    return -1


@_typed("none(EV, ST, EL, i8)")
def _normal_action(ev: Any, st: Any, el: Any, n: int) -> None:
    """One ordinary thing a visitor does on a page, then a pause of >= 1.2 s."""
    r = np.random.random()
    if r < 0.35:
        _normal_scroll(ev, st)
    elif r < 0.50:
        _wander(ev, st)
    elif r < 0.56:
        _emit(ev, st, _HIDDEN, 0, 0, 0, 0, -1, -1)
        _wait(st, 2_000, 90_000)
        _emit(ev, st, _VISIBLE, 0, 0, 0, 0, -1, -1)
    else:
        sel = _clickable(st[_PTYPE])
        row = _find(el, n, sel) if sel >= 0 else -1
        if row >= 0:
            _click(ev, st, el, row)
            _respond(ev, st, sel)
        else:
            _normal_scroll(ev, st)
    _wait(st, 1_200, 4_500)


@_typed("i8(EV, ST, EL, i8, i8, i8, b1)")
def _type(ev: Any, st: Any, el: Any, n: int, fi: int, shape: int, by_click: bool) -> int:
    """FOCUS a field (by clicking it or tabbing to it), type, CHANGE and BLUR.
    Returns the time of the CHANGE."""
    field = _F0 + fi
    if by_click or st[_MOUSE] == 0:
        sel = _S_CARDHOLDER if fi == _FI_CARDHOLDER else _S_IN0 + fi
        if fi == _FI_NEWS:
            sel = _S_NEWS_EMAIL
        elif fi == _FI_Q:
            sel = _S_SEARCH
        row = _find(el, n, sel)
        if row >= 0:
            _click(ev, st, el, row)
        _wait(st, 3, 20)
    else:
        _wait(st, 100, 400)
    _emit(ev, st, _FOCUS, 0, 0, 0, 0, field, -1)
    _wait(st, 1_500, 7_000)
    _emit(ev, st, _CHANGE, 0, 0, _VLEN[shape], 0, field, shape)
    t_change = st[_T]
    st[_LASTFT] = t_change
    _wait(st, 1, 5)
    _emit(ev, st, _BLUR, 0, 0, _VLEN[shape], 0, field, shape)
    return int(t_change)


@_typed("i8(EV, ST, EL, i8, i8, i8, b1)")
def _refocus(ev: Any, st: Any, el: Any, n: int, fi: int, shape: int, clicked: bool) -> int:
    """Come back to a field (FOCUS unless already focused), type again, CHANGE, BLUR."""
    field = _F0 + fi
    if clicked:
        row = _find(el, n, _S_IN0 + fi)
        if row >= 0:
            _click(ev, st, el, row)
        _wait(st, 3, 20)
        _emit(ev, st, _FOCUS, 0, 0, 0, 0, field, -1)
    _wait(st, 2_000, 6_000)
    _emit(ev, st, _CHANGE, 0, 0, _VLEN[shape], 0, field, shape)
    t_change = st[_T]
    st[_LASTFT] = t_change
    _wait(st, 1, 5)
    _emit(ev, st, _BLUR, 0, 0, _VLEN[shape], 0, field, shape)
    return int(t_change)


@_typed("none(ST, i8)")
def _pad_dwell(st: Any, ms: int) -> None:
    """Stay on the page at least ``ms`` since its page view."""
    if st[_T] < st[_PVT] + ms:
        st[_T] = st[_PVT] + ms + _ri(0, 3_000)


@_typed("i8(EV, ST, EL, i8, i8, i8)")
def _go(ev: Any, st: Any, el: Any, n: int, url: int, ptype: int) -> int:
    """Leave the current page for ``url``: a link, the search form, or the back button."""
    if url == st[_PREV]:
        # A, B, A: stay long on B so no detector may call the return quick.
        _pad_dwell(st, 30_000)
        if np.random.random() < 0.5:
            return _page_view(ev, st, el, url, ptype, _NAV_POP, st[_URL])
    else:
        _pad_dwell(st, 6_000)
    if ptype == _PT_SEARCH and not (st[_NOSEARCHHOME] == 1 and st[_URL] == _U_HOME):
        _type(ev, st, el, n, _FI_Q, _SHAPES[_FI_Q, 0, _ri(0, 2)], True)
        _wait(st, 100, 600)
        _emit(ev, st, _SUBMIT, 0, 0, 0, 0, _FORM_SEARCH, -1)
        _wait(st, 10, 50)
        _emit(ev, st, _REQ, 0, 0, 0, 0, _A_SEARCH, -1)
        _wait(st, 100, 400)
        return _page_view(ev, st, el, url, ptype, _NAV_PUSH, st[_URL])
    sel = _S_CARD
    if ptype == _PT_HOME:
        sel = _S_LOGO
    elif ptype in (_PT_CAT, _PT_SEARCH):
        sel = _S_NAVCAT
    elif ptype == _PT_CART:
        sel = _S_CARTLINK
    elif ptype == _PT_CHECKOUT:
        sel = _S_CHECKOUTBTN
    row = _find(el, n, sel)
    if row < 0:
        row = _find(el, n, _S_NAVCAT)
    _click(ev, st, el, row)
    _wait(st, 80, 600)
    return _page_view(ev, st, el, url, ptype, _NAV_PUSH, st[_URL])


@_typed("i8(EV, ST, EL, i8, i8, i8, i8, i8, b1)")
def _burst(
    ev: Any, st: Any, el: Any, r: int, clicks: int, lo: int, hi: int, jit: int, resp: bool
) -> int:
    """``clicks`` clicks on element row ``r``, ``lo``..``hi`` ms apart, positions within
    ``jit`` px of the first; each answered by a MUTATION when ``resp``. Returns the first t,
    or -1 (and clicks nothing) when ``r`` < 0: the element is not on this page."""
    if r < 0:
        return -1
    x = el[r, 1] + _ri(8, max(9, el[r, 3] - 8))
    y = el[r, 2] + _ri(8, max(9, el[r, 4] - 8))
    _move_to(ev, st, x, y)
    _wait(st, 80, 250)
    t0 = st[_T]
    for j in range(clicks):
        if j > 0:
            _wait(st, lo, hi)
        _click_at(ev, st, el[r, 0], x + _ri(-jit, jit), y + _ri(-jit, jit), el[r, 5])
        if resp:
            _wait(st, 15, 90)
            _emit(ev, st, _MUT, 0, 0, _ri(1, 8), 0, -1, -1)
    return int(t0)


@_typed("i8(EV, R, ST, EL, i8, i8)")
def _plant(ev: Any, R: Any, st: Any, el: Any, n: int, item: int) -> int:
    """Plant one struggle or look-alike on the current page. Returns the element count (a
    quick back changes page and comes back)."""
    url = st[_URL]
    pt = st[_PTYPE]
    prod = pt == _PT_PROD
    if item == _RAGE:
        sel = (
            (_S_ADD if np.random.random() < 0.6 else _S_SIZE)
            if prod
            else (_S_LOADMORE if np.random.random() < 0.5 else _S_FILTER)
        )
        k = _ri(3, 8)
        t0 = _burst(ev, st, el, _find(el, n, sel), k, 80, 160, 6, False)
        if t0 >= 0:  # planted only where the element is on the page
            _truth(R, st, _RAGE, t0, url, sel, -1, k, -1)
        _wait(st, 3_600, 5_000)  # nothing answers: the dead-click window passes in silence
    elif item == _DEAD:
        sel = (_S_WISH if np.random.random() < 0.5 else _S_SIZEGUIDE) if prod else _S_SORT
        _click(ev, st, el, _find(el, n, sel))
        t0 = st[_T]
        silence = _ri(4_200, 6_500)
        _wait(st, 300, 800)
        _wander(ev, st)
        st[_T] = max(st[_T], t0 + silence)
        _truth(R, st, _DEAD, t0, url, sel, -1, silence, -1)
        # Something later answers on this page, so the session has response signals.
        sel2 = _S_IMAGE if prod else _S_FILTER
        _click(ev, st, el, _find(el, n, sel2))
        _respond(ev, st, sel2)
    elif item == _ERROR:
        js = prod and np.random.random() < 0.4
        sel = _S_SIZE if js else (_S_ADD if prod else _S_LOADMORE)
        api = _A_STOCK if js else (_A_CART if prod else _A_PRODUCTS)
        _click(ev, st, el, _find(el, n, sel))
        t0 = st[_T]
        _wait(st, 10, 60)
        _emit(ev, st, _REQ, 0, 0, 0, 0, api, -1)
        if js:
            msg = _JS_MSGS[_ri(0, len(_JS_MSGS) - 1)]
            _wait(st, 50, 600)
            _emit(ev, st, _JSERR, 0, 0, 0, 0, _JS_SRC, msg)
            _truth(R, st, _ERROR, t0, url, sel, -1, -1, msg)
        else:
            status = (500, 502, 503, 504, 0, 404)[_ri(0, 5)]
            _wait(st, 150, 1_500)
            _emit(ev, st, _NETFAIL, 0, 0, status, 0, api, _M_POST if prod else _M_GET)
            _truth(R, st, _ERROR, t0, url, sel, -1, status, api)
        if np.random.random() < 0.5:
            _wait(st, 30, 200)
            _emit(ev, st, _MUT, 0, 0, _ri(1, 3), 0, -1, -1)  # an error toast
        _wait(st, 2_500, 4_000)
    elif item == _THRASH:
        _wait(st, 400, 900)  # a pause: the thrash starts its own trajectory
        k = _ri(9, 14)
        base = min(max(st[_CX], 300), st[_VW] - 300)
        y = min(max(st[_CY], st[_SY] + 100), st[_SY] + st[_VH] - 100)
        t0 = st[_T]
        for j in range(k):
            if j > 0:
                _wait(st, 55, 85)
            amp = _ri(100, 250)
            x = base + amp if j % 2 == 0 else base - amp
            yy = y + _ri(-40, 40)
            _emit(ev, st, _MOVE, x, yy, 0, 0, -1, -1)
            st[_MT] = st[_T]
            st[_MX] = x
            st[_MY] = yy
            st[_CX] = x
            st[_CY] = yy
        _truth(R, st, _THRASH, t0, url, -1, -1, k, -1)
        _wait(st, 600, 1_500)
    elif item == _XSCROLL:
        # First scroll activity of the page view: down to ~1200-1600 px, then reversals.
        target = _ri(1_200, 1_600)
        while st[_SY] < target - 40:
            _wait(st, 80, 250)
            st[_SY] = min(st[_SY] + _ri(300, 700), target)
            st[_SDIR] = 1
            _emit(ev, st, _SCROLL, 0, st[_SY], st[_PH], st[_VH], -1, -1)
        k = _ri(12, 20)
        c = st[_SY] - 250
        t0 = 0
        for j in range(k):
            _wait(st, 120, 350)
            half = _ri(100, 250)
            st[_SY] = c - half if j % 2 == 0 else c + half
            _emit(ev, st, _SCROLL, 0, st[_SY], st[_PH], st[_VH], -1, -1)
            if j == 0:
                t0 = st[_T]
        st[_SDIR] = 1 if k % 2 == 0 else -1
        st[_REV] += k
        _truth(R, st, _XSCROLL, t0, url, -1, -1, k, -1)
        _wait(st, 1_200, 3_000)
    elif item == _QUICK:
        _pad_dwell(st, 6_000)
        a_url = url
        a_type = pt
        if prod:
            b_type = _PT_CAT
            b_url = _U_CAT0 + _ri(0, _N_CAT - 1)
            sel = _S_NAVCAT
        else:
            b_type = _PT_PROD
            b_url = _U_PROD0 + _ri(0, _N_PRODUCTS - 1)
            sel = _S_CARD
        _click(ev, st, el, _find(el, n, sel))
        _wait(st, 80, 500)
        n = _page_view(ev, st, el, b_url, b_type, _NAV_PUSH, a_url)
        t_b = st[_PVT]
        back = _ri(1_200, 3_800)
        st[_T] = max(st[_T], t_b + back)
        n = _page_view(ev, st, el, a_url, a_type, _NAV_POP, b_url)
        _truth(R, st, _QUICK, st[_PVT], b_url, a_url, -1, st[_PVT] - t_b, -1)
        _wait(st, 1_200, 3_000)
    elif item == _N_STEPPER:
        sel = _S_QTYP if np.random.random() < 0.7 else _S_QTYM
        k = _ri(4, 6)
        t0 = _burst(ev, st, el, _find(el, n, sel), k, 150, 350, 3, True)
        if t0 >= 0:  # planted only where the element is on the page
            _truth(R, st, _N_STEPPER, t0, url, sel, -1, k, -1)
        _wait(st, 1_200, 3_000)
    elif item == _N_CAROUSEL:
        k = _ri(3, 6)
        t0 = _burst(ev, st, el, _find(el, n, _S_CAROUSEL), k, 250, 600, 3, True)
        if t0 >= 0:  # planted only where the element is on the page
            _truth(R, st, _N_CAROUSEL, t0, url, _S_CAROUSEL, -1, k, -1)
        _wait(st, 1_200, 3_000)
    elif item == _N_DOUBLE:
        t0 = _burst(ev, st, el, _find(el, n, _S_IMAGE), 2, 90, 220, 2, True)
        if t0 >= 0:  # planted only where the element is on the page
            _truth(R, st, _N_DOUBLE, t0, url, _S_IMAGE, -1, 2, -1)
        _wait(st, 1_500, 3_000)
    elif item == _N_TRIPLE:
        t0 = _burst(ev, st, el, _find(el, n, _S_DESC), 3, 90, 200, 2, False)
        if t0 >= 0:  # planted only where the element is on the page
            _truth(R, st, _N_TRIPLE, t0, url, _S_DESC, -1, 3, -1)
        _wait(st, 2_000, 5_000)
    elif item == _NEWSLETTER_ABANDON:
        fi = _FI_NEWS
        _type(ev, st, el, n, fi, _SHAPES[fi, st[_LOC], _ri(0, 2)], True)
        _truth(R, st, _ABANDON, st[_LASTFT], url, _FORM_NEWS, _F0 + fi, 1, -1)
        _wait(st, 1_500, 4_000)
    return n


@_typed("i8(EV, R, ST, EL, i8, i8, b1)")
def _browse(ev: Any, R: Any, st: Any, el: Any, n: int, item: int, add_to_cart: bool) -> int:
    """The ordinary actions of a browse page, with ``item`` (or -1) planted among them."""
    acts = _ri(1, 5)
    at = 0 if item == _XSCROLL else _ri(0, acts)
    for j in range(acts + 1):
        if j == at and item >= 0:
            n = _plant(ev, R, st, el, n, item)
        if j < acts:
            _normal_action(ev, st, el, n)
    if add_to_cart:
        _click(ev, st, el, _find(el, n, _S_ADD))
        _respond(ev, st, _S_ADD)
        _wait(st, 1_200, 4_000)
    elif st[_PTYPE] == _PT_HOME and st[_NOSEARCHHOME] == 0 and np.random.random() < 0.05:
        # An ordinary newsletter signup: sent, answered by a success milestone.
        _type(ev, st, el, n, _FI_NEWS, _SHAPES[_FI_NEWS, st[_LOC], _ri(0, 2)], True)
        _wait(st, 300, 1_200)
        _click(ev, st, el, _find(el, n, _S_NEWS_SIGNUP))
        _wait(st, 3, 15)
        _emit(ev, st, _SUBMIT, 0, 0, 0, 0, _FORM_NEWS, -1)
        _wait(st, 10, 60)
        _emit(ev, st, _REQ, 0, 0, 0, 0, _A_NEWS, -1)
        _wait(st, 100, 400)
        _emit(ev, st, _MUT, 0, 0, _ri(2, 6), 0, -1, -1)
        _wait(st, 1, 10)
        _emit(ev, st, _MILESTONE, 0, 0, 0, 0, _MS_NEWS, -1)
        _wait(st, 1_200, 3_000)
    return n


@_typed("none(EV, ST)")
def _leave(ev: Any, st: Any) -> None:
    if np.random.random() < 0.5:
        _emit(ev, st, _HIDDEN, 0, 0, 0, 0, -1, -1)
        _wait(st, 1, 5)
    _emit(ev, st, _LEAVE, 0, 0, 0, 0, -1, -1)


@_typed("none(EV, ST, i8, i8)")
def _idle_leave(ev: Any, st: Any, lo: int, hi: int) -> None:
    """Stay a while without touching anything (mouse only), then end the session."""
    end = st[_T] + _ri(lo, hi)
    while st[_T] < end - 2_000:
        _wander(ev, st)
        _wait(st, 500, 4_000)
    st[_T] = max(st[_T], end)
    _leave(ev, st)


@_typed("none(EV, R, ST, EL, i8, i8)")
def _funnel_drop(ev: Any, R: Any, st: Any, el: Any, n: int, step: int) -> None:
    """Leave the funnel on this step's page without touching a form."""
    t_pv = st[_PVT]
    if np.random.random() < 0.5:
        _normal_scroll(ev, st)
    _idle_leave(ev, st, 6_000, 40_000)
    _truth(R, st, _FUNNEL, t_pv, st[_URL], -1, -1, step, _STEP_CODES[step])


@_typed("i8(EV, R, ST, EL, i8, i8)")
def _checkout(ev: Any, R: Any, st: Any, el: Any, n: int, scn: int) -> int:
    """The shipping form under scenario ``scn``. Returns the element count of the next page,
    or -1 when the session ended here."""
    url = st[_URL]
    t_pv = st[_PVT]
    loc = st[_LOC]
    bad = _FI_EMAIL if loc == _LOC_US else _FI_PHONE
    bad_shape = _BAD_EMAIL if loc == _LOC_US else _SHAPES[_FI_PHONE, loc, 0]
    fix_shape = _SHAPES[bad, loc, 1]
    msg = _MSG_EMAIL if loc == _LOC_US else _MSG_US_PHONE
    bad_field = _F0 + bad
    planted_bad = scn in (_SC_INLINE_ERROR, _SC_SUBMIT_FIX, _SC_SUBMIT_GIVEUP)
    nf = _ri(1, 4) if scn == _SC_ABANDON else 6
    changed = np.zeros(6, np.int64)  # time of each field's first CHANGE
    for fi in range(nf):
        by_click = fi == 0 or np.random.random() < 0.5
        shape = _SHAPES[fi, loc, _ri(1, 2) if fi == _FI_PHONE else _ri(0, 2)]
        if planted_bad and fi == bad:
            shape = bad_shape
        t_change = _type(ev, st, el, n, fi, shape, by_click)
        changed[fi] = t_change
        if scn == _SC_INLINE_ERROR and fi == bad:
            _wait(st, 20, 150)
            _emit(ev, st, _VERR, 0, 0, _SRC_ARIA, 0, bad_field, msg)
            _truth(R, st, _FORM_ERROR, st[_T], url, -1, bad_field, -1, msg)
            _wait(st, 5, 30)
            _emit(ev, st, _MUT, 0, 0, _ri(1, 3), 0, -1, -1)
            _wait(st, 800, 2_500)
            t2 = _refocus(ev, st, el, n, bad, fix_shape, True)
            _truth(R, st, _REFILL, t2, url, -1, bad_field, t2 - t_change, -1)
        _wait(st, 300, 1_500)
    if scn == _SC_ABANDON:
        _idle_leave(ev, st, 5_000, 60_000)
        _truth(R, st, _ABANDON, st[_LASTFT], url, _FORM_SHIP, _F0 + nf - 1, nf, -1)
        _truth(R, st, _FUNNEL, t_pv, url, -1, -1, 2, _STEP_CODES[2])
        return -1
    if scn == _SC_REFILL:
        fi = _ri(0, 3)
        t_first = changed[fi]
        _wait(st, 500, 2_000)
        t2 = _refocus(ev, st, el, n, fi, _SHAPES[fi, loc, _ri(0, 2)], True)
        _truth(R, st, _REFILL, t2, url, -1, _F0 + fi, t2 - t_first, -1)
    _click(ev, st, el, _find(el, n, _S_CONTINUE))
    _wait(st, 3, 20)
    _emit(ev, st, _SUBMIT, 0, 0, 0, 0, _FORM_SHIP, -1)
    if scn in (_SC_SUBMIT_FIX, _SC_SUBMIT_GIVEUP):
        t_sub = st[_T]
        _truth(R, st, _FAILED, t_sub, url, _FORM_SHIP, bad_field, 0, msg)
        _wait(st, 5, 40)
        _emit(ev, st, _VERR, 0, 0, _SRC_NATIVE, 0, bad_field, msg)
        _truth(R, st, _FORM_ERROR, st[_T], url, -1, bad_field, -1, msg)
        _wait(st, 5, 30)
        _emit(ev, st, _MUT, 0, 0, _ri(1, 3), 0, -1, -1)
        _wait(st, 2, 15)
        _emit(ev, st, _FOCUS, 0, 0, 0, 0, bad_field, -1)
        st[_LASTFT] = st[_T]
        if scn == _SC_SUBMIT_GIVEUP:
            t_focus = st[_T]
            _idle_leave(ev, st, 15_000, 45_000)
            _truth(R, st, _ABANDON, t_focus, url, _FORM_SHIP, bad_field, 6, -1)
            _truth(R, st, _FUNNEL, t_pv, url, -1, -1, 2, _STEP_CODES[2])
            return -1
        t2 = _refocus(ev, st, el, n, bad, fix_shape, False)
        _truth(R, st, _REFILL, t2, url, -1, bad_field, t2 - t_sub, -1)
        _wait(st, 500, 1_500)
        _click(ev, st, el, _find(el, n, _S_CONTINUE))
        _wait(st, 3, 20)
        _emit(ev, st, _SUBMIT, 0, 0, 0, 0, _FORM_SHIP, -1)
    _wait(st, 15, 60)
    _emit(ev, st, _REQ, 0, 0, 0, 0, _A_CHECKOUT, -1)
    _wait(st, 150, 500)
    return _page_view(ev, st, el, _U_PAYMENT, _PT_PAYMENT, _NAV_PUSH, url)


@_typed("none(EV, R, ST, EL, i8, i8, i8, i8, i8, i8, i8, i8, i8, f8, f8)")
def _session(
    ev: Any,
    R: Any,
    st: Any,
    el: Any,
    s: int,
    start: int,
    dev: int,
    vw: int,
    vh: int,
    loc: int,
    tz: int,
    camp: int,
    returning: int,
    rate: float,
    neg_rate: float,
) -> None:
    p0 = st[_P]
    tp0 = st[_TP]
    st[:] = 0
    st[_P] = p0
    st[_TP] = tp0
    st[_SESS] = s
    st[_T] = start
    st[_T0] = start
    st[_DEV] = dev
    st[_VW] = vw
    st[_VH] = vh
    st[_LOC] = loc
    st[_MOUSE] = 1 if dev == _DESKTOP else 0
    st[_CX] = vw // 2
    st[_CY] = vh // 2
    st[_MT] = -(10**9)
    st[_LCT] = -(10**9)
    st[_URL] = -1
    st[_PREV] = -1
    mouse = st[_MOUSE] == 1

    # --- plan: what to plant, whether to enter the funnel, and the pages to browse
    b1 = -1
    b2 = -1
    scn = _SC_NONE
    drop = 0
    newsletter = False
    if np.random.random() < rate:
        k = _ri(0, 10)
        if k == _THRASH and not mouse:
            k = _ri(0, 2)
        if k <= _QUICK:
            b1 = k
        elif k == _FORM_ERROR:
            scn = (_SC_INLINE_ERROR, _SC_SUBMIT_FIX, _SC_SUBMIT_GIVEUP)[_ri(0, 2)]
        elif k == _FAILED:
            scn = (_SC_SUBMIT_FIX, _SC_SUBMIT_GIVEUP, _SC_PAY_HANG)[_ri(0, 2)]
        elif k == _REFILL:
            scn = _SC_REFILL
        elif k == _ABANDON:
            if np.random.random() < 0.5:
                scn = _SC_ABANDON
            else:
                newsletter = True
        else:
            drop = _ri(1, 3)
        if np.random.random() < 0.25:
            b2 = _ri(0, 5)
            if b2 == b1 or (b2 == _THRASH and not mouse):
                b2 = -1
    neg = _ri(_N_STEPPER, _N_CAROUSEL) if np.random.random() < neg_rate else -1
    enter = scn != _SC_NONE or drop > 0
    if not enter:
        enter = np.random.random() < (0.3 if returning else 0.2)
        if enter:
            r = np.random.random()
            drop = 1 if r < 0.3 else (2 if r < 0.5 else (3 if r < 0.62 else 0))
    st[_NOSEARCHHOME] = 1 if newsletter else 0

    items = np.full(4, -1, np.int64)
    ni = 0
    for it in (b1, b2, neg):
        if it >= 0:
            items[ni] = it
            ni += 1
    if newsletter:
        items[ni] = _NEWSLETTER_ABANDON
        ni += 1
    nb = 1
    while nb < 10 and np.random.random() < 0.62:
        nb += 1
    free = nb - (1 if enter else 0)
    if free < ni:
        nb += ni - free
    # Page types: a random walk, then adjusted to what the plants need.
    types = np.zeros(nb, np.int64)
    r = np.random.random()
    types[0] = (
        _PT_HOME if r < 0.4 else (_PT_CAT if r < 0.65 else (_PT_PROD if r < 0.9 else _PT_SEARCH))
    )
    for k in range(1, nb):
        r = np.random.random()
        p = types[k - 1]
        if p == _PT_HOME:
            types[k] = _PT_CAT if r < 0.45 else (_PT_PROD if r < 0.8 else _PT_SEARCH)
        elif p == _PT_PROD:
            types[k] = (
                _PT_PROD
                if r < 0.35
                else (_PT_CAT if r < 0.7 else (_PT_HOME if r < 0.85 else _PT_SEARCH))
            )
        else:
            types[k] = _PT_PROD if r < 0.7 else (_PT_CAT if r < 0.85 else _PT_SEARCH)
    plant = np.full(nb, -1, np.int64)
    last_free = nb - 1 - (1 if enter else 0)
    for j in range(ni):
        it = items[j]
        slot = _ri(0, last_free)
        while plant[slot] >= 0:
            slot = _ri(0, last_free)
        plant[slot] = it
        t = types[slot]
        if it == _NEWSLETTER_ABANDON:
            types[slot] = _PT_HOME
        elif it == _N_CAROUSEL:
            if t not in (_PT_HOME, _PT_PROD):
                types[slot] = _PT_PROD
        elif (
            (it >= _N_STEPPER or it <= _ERROR)
            and t != _PT_PROD
            and not (it <= _ERROR and t == _PT_CAT)
        ):
            types[slot] = _PT_PROD
    if enter:
        types[nb - 1] = _PT_PROD
    urls = np.zeros(nb, np.int64)
    for k in range(nb):
        t = types[k]
        if t == _PT_HOME:
            urls[k] = _U_HOME
        elif t == _PT_SEARCH:
            urls[k] = _U_SEARCH
        elif t == _PT_CAT:
            urls[k] = _U_CAT0 + _ri(0, _N_CAT - 1)
        else:
            urls[k] = _U_PROD0 + _ri(0, _N_PRODUCTS - 1)
        if k > 0 and urls[k] == urls[k - 1] and t != _PT_SEARCH:
            types[k] = _PT_SEARCH if t == _PT_HOME else t
            urls[k] = (
                _U_SEARCH
                if t == _PT_HOME
                else (
                    _U_CAT0 + (urls[k] - _U_CAT0 + 1) % _N_CAT
                    if t == _PT_CAT
                    else _U_PROD0 + (urls[k] - _U_PROD0 + 1) % _N_PRODUCTS
                )
            )

    # --- the landing page, with the session's attributes
    ref = -1
    if camp > 0:
        ref = _CAMP[camp - 1, 3]
    elif np.random.random() < (0.35 if returning else 0.6):
        ref = _ORGANIC_REF[_ri(0, len(_ORGANIC_REF) - 1)]
    n = _page_view(ev, st, el, urls[0], types[0], _NAV_LOAD, ref)
    _wait(st, 2, 20)
    _emit(ev, st, _ATTR, 0, 0, 0, 0, _K_LOCALE, _L_LOC0 + loc)
    _emit(ev, st, _ATTR, 0, 0, 0, 0, _K_TZ, tz)
    _emit(ev, st, _ATTR, 0, 0, 0, 0, _K_COUNTRY, _L_CTRY0 + loc)
    if camp > 0:
        _emit(ev, st, _ATTR, 0, 0, 0, 0, _K_CAMP, _CAMP[camp - 1, 0])
        _emit(ev, st, _ATTR, 0, 0, 0, 0, _K_SRC, _CAMP[camp - 1, 1])
        _emit(ev, st, _ATTR, 0, 0, 0, 0, _K_MED, _CAMP[camp - 1, 2])
    if np.random.random() < 0.03:  # a harmless error at load, before any click
        _wait(st, 200, 1_500)
        _emit(ev, st, _JSERR, 0, 0, 0, 0, _JS_SRC, _JS_RESIZE)
    _wait(st, 800, 3_000)

    # --- browsing
    for k in range(nb):
        n = _browse(ev, R, st, el, n, plant[k], enter and k == nb - 1)
        if k + 1 < nb:
            n = _go(ev, st, el, n, urls[k + 1], types[k + 1])
    if not enter:
        _pad_dwell(st, 6_000)
        _leave(ev, st)
        return

    # --- the funnel: cart, checkout, payment, confirmation
    n = _go(ev, st, el, n, _U_CART, _PT_CART)
    for _ in range(_ri(0, 2)):
        _normal_action(ev, st, el, n)
    if drop == 1:
        _funnel_drop(ev, R, st, el, n, 1)
        return
    n = _go(ev, st, el, n, _U_CHECKOUT, _PT_CHECKOUT)
    _wait(st, 10, 50)
    _emit(ev, st, _MILESTONE, 0, 0, st[_CARTV], 0, _MS_CHECKOUT, -1)
    _wait(st, 800, 3_000)
    if drop == 2:
        _funnel_drop(ev, R, st, el, n, 2)
        return
    n = _checkout(ev, R, st, el, n, scn)
    if n < 0:
        return
    t_pv = st[_PVT]
    _wait(st, 800, 3_000)
    if drop == 3:
        _funnel_drop(ev, R, st, el, n, 3)
        return
    _type(ev, st, el, n, _FI_CARDHOLDER, _SHAPES[_FI_CARDHOLDER, loc, _ri(0, 2)], True)
    _wait(st, 500, 2_000)
    _click(ev, st, el, _find(el, n, _S_PAY))
    _wait(st, 3, 20)
    _emit(ev, st, _SUBMIT, 0, 0, 0, 0, _FORM_PAY, -1)
    t_sub = st[_T]
    _wait(st, 20, 80)
    _emit(ev, st, _REQ, 0, 0, 0, 0, _A_PAYMENT, -1)
    if scn == _SC_PAY_HANG:
        _wait(st, 50, 150)
        _emit(ev, st, _MUT, 0, 0, _ri(1, 2), 0, -1, -1)  # a spinner, then nothing
        t_touch = st[_LASTFT]
        _idle_leave(ev, st, 15_000, 45_000)  # on past any success window (5 s, 10 s)
        _truth(R, st, _FAILED, t_sub, _U_PAYMENT, _FORM_PAY, -1, 1, -1)
        _truth(R, st, _ABANDON, t_touch, _U_PAYMENT, _FORM_PAY, _F0 + _FI_CARDHOLDER, 1, -1)
        _truth(R, st, _FUNNEL, t_pv, _U_PAYMENT, -1, -1, 3, _STEP_CODES[3])
        return
    _wait(st, 200, 500)
    n = _page_view(ev, st, el, _U_CONFIRM, _PT_CONFIRM, _NAV_PUSH, _U_PAYMENT)
    _wait(st, 10, 60)
    _emit(ev, st, _MILESTONE, 0, 0, st[_CARTV], 0, _MS_ORDER, -1)
    _wait(st, 1_000, 4_000)
    if np.random.random() < 0.5:
        _normal_scroll(ev, st)
    _pad_dwell(st, 6_000)
    _leave(ev, st)


@_typed("none(EV, i8, i8)")
def _batches(ev: Any, lo: int, hi: int) -> None:
    """batch and i the way the snippet flushes (cemreplay.events.assign_batches): a new batch
    every 5 s from the session's first event, or after 300 events."""
    hi = min(hi, ev.shape[1])
    if lo >= hi:
        return
    t0 = ev[0, lo]
    tmax = t0
    b = 0
    cnt = 0
    prev_w = 0
    for p in range(lo, hi):
        tmax = max(tmax, ev[0, p])
        w = (tmax - t0) // 5_000
        if p > lo and (w != prev_w or cnt == 300):
            b += 1
            cnt = 0
        ev[8, p] = b
        ev[9, p] = cnt
        cnt += 1
        prev_w = w


@_jit
def _kernel(
    seeds: Any,
    starts: Any,
    dev: Any,
    vw: Any,
    vh: Any,
    loc: Any,
    tz: Any,
    camp: Any,
    ret: Any,
    rate: float,
    neg_rate: float,
    max_events: int,
    ev: Any,
    R: Any,
    soff: Any,
) -> Any:
    st = np.zeros(_NST, np.int64)
    el = np.zeros((32, 6), np.int64)
    used = 0
    total = 0
    for s in range(len(seeds)):
        if max_events > 0 and total >= max_events:
            break
        np.random.seed(seeds[s])
        soff[s] = total
        _session(
            ev,
            R,
            st,
            el,
            s,
            starts[s],
            dev[s],
            vw[s],
            vh[s],
            loc[s],
            tz[s],
            camp[s],
            ret[s],
            rate,
            neg_rate,
        )
        total = st[_P]
        _batches(ev, soff[s], total)
        used = s + 1
    soff[used] = total
    return used, total, st[_TP]
