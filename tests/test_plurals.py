"""French plurals: every number agrees with its words (« 0 écriture intégrée », « 1 société », « 2 sociétés »).

In French 0 and 1 take the singular. A « (s) » written after a word, Django's ``|pluralize`` (English's rule: 0 takes
the plural) or a hand-made ``{% if n > 1 %}s{% endif %}`` cannot agree: the walk below finds any left in the
product's templates, Python and JavaScript. The other tests render each changed message for 0, 1 and 2: the
screens through the test client, the operator commands, and the functions that build a message.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import re
import shutil
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from companies.services import _gone_confirmed, _read, company_referential_pull
from connectors.models import Connector
from synchro.models import SyncRun, SyncRunCompany
from tests.conftest import give_companies, grant, make_company
from tests.support.exports import export
from tests.support.invoices import make_invoice
from tests.test_catalogue import ROOT, product_files

PARIS = ZoneInfo("Europe/Paris")
TODAY = dt.datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
BLOCKED = "SUPPLIER_BLOCKED Le fournisseur est bloqué dans Sage FRP 1000"

# --- the walk: no « (s) », no |pluralize, no hand-made plural ----------------------------------------------

# A letter right before: « société(s) », « intégrée(s) ». « délai d'attente (s) » is the unit, the second.
BRACKETED = re.compile(r"[^\W\d_]\((?:s|es|x)\)")
PLURALIZE = re.compile(r"\|\s*pluralize\b|\bpluralize\(")
# « {% if n > 1 %}s{% endif %} », « {% if n == 1 %}{% else %}s{% endif %} »
TEMPLATE_SUFFIX = re.compile(r"%\}\s*(?:s|es|x)\s*\{%\s*(?:endif|else)\b")
# « "s" if n > 1 else "" », « "" if n == 1 else "s" »
PYTHON_SUFFIX = re.compile(r"""["'](?:s|es|x)["']\s+if\b|\belse\s+["'](?:s|es|x)["']""")
# « n > 1 ? "s" : "" », « n === 1 ? "" : "s" »
SCRIPT_SUFFIX = re.compile(r"""\?\s*["'](?:s|es|x)?["']\s*:\s*["'](?:s|es|x)?["']""")


def _docstrings(tree: ast.AST) -> set[int]:
    """Docstrings explain the code and may quote the very text a fix removed."""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def offences(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found: list[tuple[int, str]] = []
    if path.suffix == ".py":
        tree = ast.parse(text, str(path))
        skipped = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
                found += [(node.lineno, match[0]) for match in BRACKETED.finditer(node.value)]
        patterns = (PLURALIZE, PYTHON_SUFFIX)
    elif path.suffix == ".js":
        patterns = (BRACKETED, SCRIPT_SUFFIX)
    else:
        patterns = (BRACKETED, PLURALIZE, TEMPLATE_SUFFIX)
    for pattern in patterns:
        found += [(text.count("\n", 0, match.start()) + 1, match[0]) for match in pattern.finditer(text)]
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [f"{name}:{line}: {what!r}" for line, what in sorted(found)]


def test_no_count_is_written_with_a_plural_that_cannot_agree():
    paths = [*product_files(".py", ".html", ".txt"), *sorted((ROOT / "static" / "js").glob("*.js"))]
    assert len(paths) > 150
    left = [offence for path in paths for offence in offences(path)]
    assert left == [], "use ngettext / {% blocktranslate count %}:\n" + "\n".join(left)


def test_the_walk_finds_each_kind_of_plural_that_cannot_agree(tmp_path):
    python = tmp_path / "command.py"
    python.write_text(
        '"""Once said « 0 intégrée(s) »."""\n'
        "from django.template.defaultfilters import pluralize\n"
        "def words(n, days):\n"
        '    """Not « N société(s) » any more."""\n'
        '    print(f"{n} société(s) en échec")\n'
        '    print(f"{n} jour" + ("s" if n > 1 else ""))\n'
        '    print(f"délai d\'attente (s) : {days}")\n'
        '    return f"{n} page{pluralize(n)}"\n',
        encoding="utf-8",
    )
    template = tmp_path / "page.html"
    template.write_text(
        "{{ n }} facture{{ n|pluralize }}\n{{ n }} écriture{% if n > 1 %}s{% endif %}\n{{ n }} mise(s) à jour\n",
        encoding="utf-8",
    )
    script = tmp_path / "app.js"
    script.write_text('label = n + " ligne" + (n > 1 ? "s" : "");\nsaid = n + " clé(s)";\n', encoding="utf-8")
    assert offences(python) == [
        "command.py:5: 'é(s)'",
        "command.py:6: '\"s\" if'",
        "command.py:8: 'pluralize('",
    ]
    assert offences(template) == ["page.html:1: '|pluralize'", "page.html:2: '%}s{% endif'", "page.html:3: 'e(s)'"]
    assert offences(script) == ['app.js:1: \'? "s" : ""\'', "app.js:2: 'é(s)'"]


# --- screens -----------------------------------------------------------------------------------------------


def page_text(response) -> str:
    """What the page says, in French: its text without the tags, one space between words."""
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "fr"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def watcher(bob, jno):
    """Bob holds « Visuel Synchronisations » for JNO."""
    grant(bob, "synchro.view_synchronisations")
    give_companies(bob, jno)
    return bob


def finished_run(company, *, trigger=SyncRun.Trigger.EXPORT, **counts) -> SyncRun:
    run = SyncRun.objects.create(trigger=trigger, finished_at=timezone.now())
    SyncRunCompany.objects.create(
        run=run, company=company, status=SyncRunCompany.Status.PARTIAL, finished_at=timezone.now(), **counts
    )
    return run


@pytest.mark.parametrize(
    ("n", "integrated", "processed"),
    [
        (0, "0 écriture intégrée", "0 / 0 traitée"),
        (1, "1 écriture intégrée", "1 / 1 traitée"),
        (2, "2 écritures intégrées", "2 / 2 traitées"),
    ],
)
def test_the_visuel_progress_box_agrees(client, watcher, jno, n, integrated, processed):
    run = finished_run(jno, total=n, done=n, integrated=n, rejected=n, open_anomalies=n)
    client.force_login(watcher)
    text = page_text(client.get(reverse("synchro:run_progress", args=[run.pk]), HTTP_HX_REQUEST="true"))
    assert f"{processed} · {integrated} · {n} en anomalie" in text
    if n == 1:
        assert "1 écriture de ces sociétés reste en anomalie : corrigez-la dans SFD." in text
    elif n == 2:
        assert "2 écritures de ces sociétés restent en anomalie : corrigez-les dans SFD." in text


@pytest.mark.parametrize(
    ("n", "words"), [(0, "0 écriture passerait"), (1, "1 écriture passerait"), (2, "2 écritures passeraient")]
)
def test_the_progress_box_of_a_simulation_agrees(client, watcher, jno, n, words):
    run = finished_run(jno, trigger=SyncRun.Trigger.SIMULATION, total=n, done=n, integrated=n)
    client.force_login(watcher)
    assert f"· {words} ·" in page_text(client.get(reverse("synchro:run_progress", args=[run.pk])))


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "Fournisseurs : 0 créé, 0 mis à jour, 0 désactivé"),
        (1, "Fournisseurs : 1 créé, 1 mis à jour (dont 1 réactivé), 1 désactivé 1 élément ignoré (voir les détails)"),
        (
            2,
            "Fournisseurs : 2 créés, 2 mis à jour (dont 2 réactivés), 2 désactivés"
            " 2 éléments ignorés (voir les détails)",
        ),
    ],
)
def test_the_societe_screen_counts_agree(client, bob, jno, n, words):
    grant(bob, "companies.update_companies")
    give_companies(bob, jno)
    counts = {"created": n, "updated": n, "reactivated": n, "deactivated": n, "unchanged": 0}
    jno.pull_status, jno.pull_finished_at = "succeeded", timezone.now()
    jno.pull_result = {"seconds": 1.5, "counts": {"suppliers": counts}, "problem_count": n, "notices": []}
    jno.save()
    client.force_login(bob)
    assert words in page_text(client.get(reverse("companies:list")))


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "JNO : terminée avec anomalies — aucune écriture à envoyer"),
        (
            1,
            "JNO : terminée avec anomalies — référentiel : 1 élément créé, 1 mis à jour, 1 désactivé"
            " · 1 écriture intégrée, 1 refusée · 1 mise à jour envoyée, 1 refusée · 1 écriture à vérifier"
            " · 1 écriture en anomalie à corriger",
        ),
        (
            2,
            "JNO : terminée avec anomalies — référentiel : 2 éléments créés, 2 mis à jour, 2 désactivés"
            " · 2 écritures intégrées, 2 refusées · 2 mises à jour envoyées, 2 refusées · 2 écritures à vérifier"
            " · 2 écritures en anomalie à corriger",
        ),
    ],
)
def test_the_historique_line_agrees(client, watcher, jno, n, words):
    pulled = {"suppliers": {"created": n, "updated": n, "deactivated": n}} if n else {}
    finished_run(
        jno, pull_counts=pulled, integrated=n, rejected=n, updated=n, update_rejected=n, unknown=n, open_anomalies=n
    )
    client.force_login(watcher)
    assert words in page_text(client.get(reverse("synchro:history")))


@pytest.mark.parametrize(("n", "words"), [(0, "0 facture"), (1, "1 facture"), (2, "2 factures")])
def test_the_invoice_list_counts_agree(client, bob, jno, sage, n, words):
    company_referential_pull(company=jno)
    for index in range(n):
        make_invoice(jno, number=f"FA-{index}")
    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, jno)
    client.force_login(bob)
    assert f" {words} " in page_text(client.get(reverse("invoices:list")))


@pytest.mark.parametrize(
    ("n", "anomalies", "chart"),
    [
        (0, "Aucune anomalie ouverte.", "aucune écriture intégrée ni refusée."),
        (1, f"{BLOCKED} 1 écriture", "1 écriture intégrée, 1 écriture refusée."),
        (2, f"{BLOCKED} 2 écritures", "2 écritures intégrées, 2 écritures refusées."),
    ],
)
def test_the_dashboard_agrees(client, bob, jno, sage, n, anomalies, chart):
    with time_machine.travel(TODAY, tick=False):
        company_referential_pull(company=jno)
        for index in range(n):
            make_invoice(jno, number=f"FA-OK-{index}", validate=True)
            make_invoice(jno, number=f"FA-KO-{index}", supplier="F0042", validate=True)  # a blocked supplier
        if n:
            export(jno)
        bob.groups.add(Group.objects.get(name="Comptable"))
        give_companies(bob, jno)
        client.force_login(bob)
        text = page_text(client.get(reverse("home")))
    assert f"Du 2 novembre 2026 au 1 décembre 2026 : {chart}" in text
    start = text.index("Anomalies à corriger, par code")
    section = text[start : text.index("Synchronisation automatique", start)].strip()
    assert section == f"Anomalies à corriger, par code {anomalies}"


@pytest.mark.parametrize(
    ("companies", "words"),
    [(["JNO"], "pour 1 société. Suivez-la ci-dessous."), (["JNO", "MULTI"], "pour 2 sociétés. Suivez-la ci-dessous.")],
)
def test_synchroniser_maintenant_says_how_many_companies(client, alice, connector, companies, words):
    for code in companies:
        make_company(connector, code)
    client.force_login(alice)
    text = page_text(client.post(reverse("synchro:sync_now"), follow=True))
    assert f"Synchronisation lancée : référentiel puis écritures, {words}" in text


@pytest.mark.parametrize(
    ("folders", "words"),
    [(1, "Import lancé pour 1 répertoire de scan :"), (2, "Import lancé pour 2 répertoires de scan :")],
)
def test_importer_says_how_many_scan_folders(client, alice, connector, folders, words):
    for index in range(folders):
        make_company(connector, f"C{index}", scan_directory=f"C0071000325_data_{index}")
    client.force_login(alice)
    assert words in page_text(client.post(reverse("invoices:import"), follow=True))


@pytest.mark.parametrize(("seconds", "words"), [(60, "réessayez dans 1 minute,"), (120, "réessayez dans 2 minutes,")])
def test_the_login_lockout_says_its_minutes(client, bob, settings, seconds, words):
    settings.LOGIN_LOCKOUT_SECONDS = seconds
    for _attempt in range(settings.LOGIN_MAX_FAILURES + 1):
        response = client.post(reverse("login"), {"username": "bob", "password": "mauvais-mot-de-passe"})
    assert f"Trop de tentatives de connexion échouées : {words}" in page_text(response)


# --- operator commands -------------------------------------------------------------------------------------


def command_output(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("runs", "days", "words"),
    [
        (0, 1, "Historique purgé (plus de 1 jour) : 0 exécution, 0 anomalie simulée."),
        (1, 2, "Historique purgé (plus de 2 jours) : 1 exécution, 0 anomalie simulée."),
        (2, 2, "Historique purgé (plus de 2 jours) : 2 exécutions, 0 anomalie simulée."),
    ],
)
def test_purge_history_says_what_it_purged(db, runs, days, words):
    for _run in range(runs):
        SyncRun.objects.create(trigger=SyncRun.Trigger.SCHEDULE, finished_at=timezone.now() - dt.timedelta(days=9))
    assert command_output("purge_history", "--days", str(days)).strip() == words


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        (0, "0 clé API rechiffrée avec la clé la plus récente."),
        (1, "1 clé API rechiffrée avec la clé la plus récente."),
        (2, "2 clés API rechiffrées avec la clé la plus récente."),
    ],
)
def test_rotate_encryption_key_says_how_many_keys(db, keys, words):
    for index in range(keys):
        connector = Connector.objects.create(name=f"Serveur {index}", url=f"http://127.0.0.1:{9000 + index}")
        connector.set_api_key(f"clé-{index}")
        connector.save()
    assert command_output("rotate_encryption_key").strip() == words


def test_pull_referential_counts_agree(jno, sage):
    first = command_output("pull_referential", "--company", "JNO")
    assert re.search(r"Journaux : [2-9]\d* créés, 0 mis à jour, 0 désactivé, 0 inchangé\n", first), first
    # Nothing changed in Sage since: nothing is read again.
    again = command_output("pull_referential", "--company", "JNO")
    assert "Journaux : 0 créé, 0 mis à jour, 0 désactivé, 0 inchangé\n" in again


def test_measure_ocr_says_one_document(tmp_path):
    scans = Path(__file__).parent / "fixtures" / "scans"
    shutil.copy(scans / "fr-gen-07.pdf", tmp_path / "fr-gen-07.pdf")
    shutil.copy(scans / "fr-gen-07.json", tmp_path / "fr-gen-07.json")
    assert f"Jeu mesuré : {tmp_path} — 1 document (1 facture française), 1 page" in command_output(
        "measure_ocr", str(tmp_path)
    )


# --- the functions that build a message --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "one", "two"),
    [
        ("accounts", "1 compte absent de Sage FRP 1000 désactivé", "2 comptes absents de Sage FRP 1000 désactivés"),
        ("journals", "1 journal absent de Sage FRP 1000 désactivé", "2 journaux absents de Sage FRP 1000 désactivés"),
        (
            "analytic-sections",
            "1 section analytique absente de Sage FRP 1000 désactivée",
            "2 sections analytiques absentes de Sage FRP 1000 désactivées",
        ),
    ],
)
def test_a_confirmed_mass_deactivation_agrees(kind, one, two):
    with override("fr"):
        assert _gone_confirmed(kind, 0).startswith(one.replace("1", "0", 1))
        assert _gone_confirmed(kind, 1).startswith(one)
        assert _gone_confirmed(kind, 2).startswith(two)


def test_the_progress_of_a_pull_counts_the_items_received(jno, sage, settings):
    settings.REFERENTIAL_PAGE_SIZE = 1
    said: list[str] = []
    with override("fr"), jno.connector.client() as client:
        _read(client, jno, "journals", since=None, progress=lambda text, **_: said.append(text))
    assert said[:2] == ["Journaux : 1 élément reçu", "Journaux : 2 éléments reçus"]
