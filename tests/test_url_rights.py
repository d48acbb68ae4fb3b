"""Every page and every POST action decides who may use it, on the server.

The test walks the whole URL configuration: a URL without an entry in ``SPECS`` fails it. For each one:
anonymous → login; logged in without the right → 403; with the right but another company's object → 404;
with the right → 200/302. A right that acts on every company (the connectors, the schedule) is refused (403) to a
holder limited to some companies. And every POST is refused without its CSRF token.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from PIL import Image

from companies.models import CompanyAccess
from companies.services import company_referential_pull
from invoices.imports import intake_scan_request
from invoices.models import IntakeFile, Invoice
from synchro.models import SyncRun, SyncRunCompany
from tests.conftest import give_companies, grant, make_company
from tests.support.invoices import make_invoice


@dataclass
class World:
    own: dict = field(default_factory=dict)
    other: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    perm: str | None  # None: any logged-in user
    methods: tuple[str, ...] = ("GET",)
    public: bool = False
    # kwargs of the URL for an object of the user's company ("own") or another one ("other").
    kwargs: Callable[[World, str], dict] | None = None
    # the POST body for the user's company ("own") or another one ("other", which must answer 404).
    data: Callable[[World, str], dict] | None = None
    ok: tuple[int, ...] = (200, 302)
    # False for what belongs to no company: a connector serves a group of companies, and its settings and the
    # schedule are one administrator's right (« Paramétrage des connecteurs »), not a company's data.
    company_scoped: bool = True
    # The page acts on every company at once: a holder of the right who sees only some companies gets 403.
    every_company: bool = False
    # A POST that needs one more right than reading the page (correcting an invoice): 403 with ``perm`` alone.
    post_perm: str | None = None


def company_pk(world: World, which: str) -> dict:
    return {"pk": getattr(world, which)["company"].pk}


def invoice_pk(world: World, which: str) -> dict:
    return {"pk": getattr(world, which)["invoice"].pk}


def paper_pk(world: World, which: str) -> dict:
    return {"pk": getattr(world, which)["paper"].pk}


def run_pk(world: World, which: str) -> dict:
    return {"pk": getattr(world, which)["run"].pk}


def intake_file_pk(world: World, which: str) -> dict:
    return {"pk": getattr(world, which)["intake_file"].pk}


SPECS: dict[str, Spec] = {
    "home": Spec(perm=None),
    "healthz": Spec(perm=None, public=True, ok=(200, 503)),
    "favicon": Spec(perm=None, public=True, ok=(301,)),
    "login": Spec(perm=None, public=True, methods=("GET", "POST")),
    "logout": Spec(perm=None, public=True, methods=("POST",)),
    "accounts:rights": Spec(perm="accounts.manage_rights", methods=("GET", "POST")),
    "companies:list": Spec(perm="companies.update_companies"),
    "companies:pull": Spec(
        perm="companies.update_companies",
        methods=("POST",),
        data=lambda world, which: {"companies": [getattr(world, which)["company"].pk]},
    ),
    "companies:discover": Spec(perm="companies.update_companies", methods=("POST",)),
    "companies:detail": Spec(perm="companies.update_companies", methods=("GET", "POST"), kwargs=company_pk),
    "companies:status": Spec(perm="companies.update_companies", kwargs=company_pk),
    "invoices:list": Spec(perm="invoices.view_invoices"),
    "invoices:detail": Spec(
        perm="invoices.view_invoices", methods=("GET", "POST"), kwargs=invoice_pk, post_perm="invoices.edit_invoices"
    ),
    "invoices:validate": Spec(perm="invoices.edit_invoices", methods=("POST",), kwargs=invoice_pk),
    "invoices:bap": Spec(perm="invoices.give_bap", methods=("POST",), kwargs=invoice_pk),
    "invoices:import": Spec(perm="invoices.edit_invoices", methods=("POST",)),
    "invoices:imports": Spec(perm="invoices.view_invoices"),
    "invoices:imports_scan": Spec(perm="invoices.edit_invoices", methods=("POST",)),
    "invoices:imports_progress": Spec(
        perm="invoices.view_invoices", kwargs=lambda world, which: {"batch": getattr(world, which)["scan"].batch}
    ),
    "invoices:import_file": Spec(perm="invoices.view_invoices", kwargs=intake_file_pk),
    "invoices:import_retry": Spec(perm="invoices.edit_invoices", methods=("POST",), kwargs=intake_file_pk),
    "invoices:document": Spec(perm="invoices.view_invoices", kwargs=paper_pk),
    "invoices:document_page": Spec(
        perm="invoices.view_invoices", kwargs=lambda world, which: paper_pk(world, which) | {"page": 1}
    ),
    "synchro:list": Spec(perm="synchro.view_synchronisations"),
    "synchro:export": Spec(
        perm="synchro.view_synchronisations",
        methods=("POST",),
        data=lambda world, which: {"type": "creation", "invoices": [getattr(world, which)["invoice"].pk]},
    ),
    "synchro:history": Spec(perm="synchro.view_synchronisations"),
    "synchro:csv": Spec(perm="synchro.view_synchronisations"),
    "synchro:run": Spec(perm="synchro.view_synchronisations", kwargs=run_pk),
    "synchro:run_progress": Spec(perm="synchro.view_synchronisations", kwargs=run_pk),
    "synchro:sync_now": Spec(perm="connectors.manage_connectors", methods=("POST",), every_company=True),
    "synchro:recent_runs": Spec(perm="connectors.manage_connectors", every_company=True),
    "connectors:settings": Spec(perm="connectors.manage_connectors", every_company=True),
    "connectors:create": Spec(perm="connectors.manage_connectors", methods=("POST",), every_company=True),
    "connectors:save": Spec(
        perm="connectors.manage_connectors",
        methods=("POST",),
        kwargs=lambda world, which: {"pk": world.own["connector"].pk},
        company_scoped=False,
        every_company=True,
    ),
    "connectors:test": Spec(
        perm="connectors.manage_connectors",
        methods=("POST",),
        kwargs=lambda world, which: {"pk": world.own["connector"].pk},
        company_scoped=False,
        every_company=True,
    ),
    "connectors:schedule": Spec(perm="connectors.manage_connectors", methods=("POST",), every_company=True),
    "connectors:schedule_disable": Spec(perm="connectors.manage_connectors", methods=("POST",), every_company=True),
    "connectors:schedule_enable": Spec(perm="connectors.manage_connectors", methods=("POST",), every_company=True),
    "synchro:anomaly": Spec(
        perm="synchro.view_synchronisations",
        kwargs=lambda world, which: {"invoice_pk": getattr(world, which)["invoice"].pk},
    ),
}


def _walk(patterns, namespace: str = "") -> list[str]:
    names = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names += _walk(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.append(f"{namespace}{pattern.name}")
        elif isinstance(pattern, URLPattern):
            names.append(f"{namespace}<unnamed {pattern.pattern}>")
    return names


ALL_URLS = sorted(set(_walk(get_resolver().url_patterns)))


def test_every_url_has_a_decision():
    assert set(ALL_URLS) - set(SPECS) == set(), "a new URL needs its rights decided in SPECS"
    assert set(SPECS) - set(ALL_URLS) == set(), "SPECS names a URL that no longer exists"


def paper_invoice(company, root) -> Invoice:
    """A scan's invoice, its document where the intake keeps it."""
    path = f"{company.code}/traités/scan.png"
    (root / company.code / "traités").mkdir(parents=True)
    image = io.BytesIO()
    Image.new("L", (600, 800), 255).save(image, "PNG")
    (root / path).write_bytes(image.getvalue())
    return Invoice.objects.create(
        company=company, number="", source_file=path, source_hash=f"{company.pk:064d}", source_format="scan-png"
    )


@pytest.fixture
def world(connector, bob, charlie, settings, tmp_path):
    settings.SCAN_ROOT, settings.VAR_DIR = tmp_path / "scan", tmp_path / "var"
    own, other = make_company(connector, "JNO"), make_company(connector, "MULTI")
    for company in (own, other):
        company_referential_pull(company=company)
    give_companies(bob, own)
    give_companies(charlie, own)
    runs, files, scans = {}, {}, {}
    papers = {company.pk: paper_invoice(company, settings.SCAN_ROOT) for company in (own, other)}
    for company in (own, other):
        runs[company.pk] = SyncRun.objects.create(trigger=SyncRun.Trigger.EXPORT)
        SyncRunCompany.objects.create(run=runs[company.pk], company=company)
        files[company.pk] = IntakeFile.objects.create(
            company=company, name="refusée.txt", name_bytes="refusée.txt".encode(), path="ailleurs/erreurs/refusée.txt",
            received_at=timezone.now(), outcome=IntakeFile.Outcome.REFUSED, reason="Format non reconnu.",
        )  # fmt: skip
        [scans[company.pk]] = intake_scan_request(companies=[company], actor=None)
    return World(
        own={"company": own, "invoice": make_invoice(own, validate=True), "run": runs[own.pk], "connector": connector,
             "intake_file": files[own.pk], "scan": scans[own.pk], "paper": papers[own.pk]},
        other={"company": other, "invoice": make_invoice(other, analytic="ADM", validate=True), "run": runs[other.pk],
               "intake_file": files[other.pk], "scan": scans[other.pk], "paper": papers[other.pk]},
    )  # fmt: skip


def _call(client: Client, method: str, url: str, data: dict | None):
    return client.post(url, data or {}) if method == "POST" else client.get(url)


@pytest.mark.parametrize("name", ALL_URLS)
def test_each_url_enforces_its_rights(name, world, bob, charlie):
    assert name in SPECS, f"{name} has no rights decision"
    spec = SPECS[name]
    url = reverse(name, kwargs=spec.kwargs(world, "own") if spec.kwargs else None)
    own_data = spec.data(world, "own") if spec.data else None
    for method in spec.methods:
        anonymous = _call(Client(), method, url, own_data)
        if spec.public:
            assert anonymous.status_code in (*spec.ok, 302), (name, method, anonymous.status_code)
            continue
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/"), (
            name,
            method,
        )

        if spec.perm:
            denied = Client()
            denied.force_login(charlie)
            assert _call(denied, method, url, own_data).status_code == 403, (
                name,
                method,
                "without the right",
            )

        allowed = Client()
        if spec.perm:
            grant(bob, spec.perm)
        allowed.force_login(bob)
        if method == "POST" and spec.post_perm:
            assert _call(allowed, method, url, own_data).status_code == 403, (name, method, "without the POST right")
            grant(bob, spec.post_perm)
        if spec.every_company:
            CompanyAccess.objects.filter(user=bob).update(all_companies=False)
            assert _call(allowed, method, url, own_data).status_code == 403, (name, method, "some companies only")
            CompanyAccess.objects.filter(user=bob).update(all_companies=True)
        if spec.kwargs and spec.company_scoped:
            other_url = reverse(name, kwargs=spec.kwargs(world, "other"))
            assert _call(allowed, method, other_url, own_data).status_code == 404, (
                name,
                method,
                "other company",
            )
        if spec.data:
            other = _call(allowed, method, url, spec.data(world, "other"))
            assert other.status_code == 404, (name, method, "other company in the body")
        response = _call(allowed, method, url, own_data)
        assert response.status_code in spec.ok, (name, method, response.status_code)


def test_every_method_a_url_accepts_has_its_rights_checked(world, alice):
    """A view that starts to accept POST (or GET) must say so in SPECS, where its rights are then walked."""
    client = Client()
    client.force_login(alice)
    undeclared = {}
    for name in ALL_URLS:
        spec = SPECS[name]
        url = reverse(name, kwargs=spec.kwargs(world, "own") if spec.kwargs else None)
        accepted = {method for method in ("GET", "POST") if _call(client, method, url, None).status_code != 405}
        if accepted != set(spec.methods):
            undeclared[name] = sorted(accepted)
    assert undeclared == {}


@pytest.mark.parametrize(
    "name", [n for n in ALL_URLS if n in SPECS and "POST" in SPECS[n].methods and not SPECS[n].public]
)
def test_each_post_requires_the_csrf_token(name, world, alice):
    spec = SPECS[name]
    url = reverse(name, kwargs=spec.kwargs(world, "own") if spec.kwargs else None)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(url, spec.data(world, "own") if spec.data else {})
    assert response.status_code == 403
    assert "Requête refusée" in response.content.decode()
