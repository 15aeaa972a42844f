"""The ``tailor`` command: parse, call one library function, print (Rich tables or ``--json``).

Every verb takes ``--db`` (default ``./tailor.duckdb`` or ``$TAILOR_DB``), ``--json`` and
``--debug``. A user error prints one line to stderr and exits 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextvars
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tailor.config import Settings
from tailor.config import load_settings as read_settings
from tailor.errors import TailorError
from tailor.privacy import keys
from tailor.privacy.pseudonym import CustomerIds, lookup_id
from tailor.store import KINDS, Warehouse, ingest_files

app = typer.Typer(
    name="tailor",
    help="Personalization for retailers from their own transaction data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Warehouse file [default: ./tailor.duckdb or $TAILOR_DB]."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file [default: ./tailor.toml or $TAILOR_CONFIG]."),
]


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a TailorError into one line on stderr and exit status 1 (traceback with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # In a context of its own: the settings a command activates (see load_settings)
            # end with it.
            return contextvars.copy_context().run(func, *args, **kwargs)
        except TailorError as exc:
            if kwargs.get("debug"):
                raise
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, float], None] | None]:
    """A Rich progress bar on stderr; yields ``update(step, fraction)``."""
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(step: str, fraction: float) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=1.0)
            bar.update(tasks[step], completed=fraction)

        yield update


def load_settings(db: Path | None, config: Path | None) -> Settings:
    """The command's settings (see :func:`tailor.config.load_settings`), also made the ones
    build files and pseudonyms read their keys from (:func:`tailor.privacy.keys.activate`)."""
    settings = read_settings(db, config)
    keys.activate(settings)
    return settings


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    return Warehouse(
        settings.db,
        read_only=read_only,
        memory_limit=settings.memory_limit,
        encryption_key=keys.warehouse_key(settings),
    )


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")
    else:
        render()


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise TailorError(f"--map {pair!r}: write it as SOURCE=TARGET, e.g. --map uid=item_id")
        mapping[source.strip()] = target.strip()
    return mapping


@app.command()
@user_errors
def ingest(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}.")],
    files: Annotated[list[Path], typer.Argument(help="CSV, TSV, Parquet or JSON-lines files.")],
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", "-m", help="SOURCE=TARGET: read file column SOURCE as TARGET."),
    ] = None,
    date_format: Annotated[
        list[str] | None,
        typer.Option(help="strptime format of timestamps, e.g. %d-%m-%Y (repeatable)."),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(help="Load valid rows; write the others with reasons to FILE.rejects.csv."),
    ] = False,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter [default: detect].")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="CSV encoding: utf-8 (default), latin-1, utf-16.")
    ] = None,
    pseudonymize: Annotated[
        bool,
        typer.Option(
            help="Store customer ids as pseudonyms (HMAC under $TAILOR_PSEUDONYM_KEY), from now "
            "on for every ingest into this warehouse; see docs/encryption-and-pseudonyms.md."
        ),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Load a retailer's files into the warehouse; the same file twice adds nothing."""
    if kind not in KINDS:
        raise TailorError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    settings = load_settings(db, config)
    configured = settings.ingest_for(kind)
    with open_warehouse(settings) as wh, progress_bar(not json_) as update:
        reports = ingest_files(
            wh,
            kind,
            files,
            parse_mapping(map_ or []),
            optional_mapping=configured.mapping,
            date_formats=date_format or [f for f in [configured.date_format] if f],
            skip_invalid=skip_invalid,
            delimiter=delimiter,
            encoding=encoding,
            progress=update,
            pseudonymize=pseudonymize,
        )
    data = [r.as_dict() for r in reports]

    def render() -> None:
        table = Table("file", "read", "inserted", "updated", "unchanged", "rejected", "seconds")
        for r in reports:
            table.add_row(
                r.file,
                f"{r.rows_read:,}",
                f"{r.rows_inserted:,}",
                f"{r.rows_updated:,}",
                f"{r.rows_unchanged:,}",
                f"{r.rows_rejected:,}",
                f"{r.seconds:.2f}",
            )
        out.print(table)
        for r in reports:
            if r.rejects_file:
                err.print(f"{r.rows_rejected} rejected rows of {r.file} -> {r.rejects_file}")

    emit(data, json_, render)


@app.command()
@user_errors
def stats(
    db: DbOption = None, config: ConfigOption = None, json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:  # fmt: skip
    """Counts of customers, items, events, baskets and the period the events cover."""
    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh:
        data = wh.stats()

    def render() -> None:
        table = Table("measure", "value", title=str(settings.db))
        for key in ("customers", "items", "events", "baskets", "first_event", "last_event"):
            value = data[key]
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
        for event_type, n in data["event_types"].items():
            table.add_row(f"events: {event_type}", f"{n:,}")
        out.print(table)

    emit(data, json_, render)


@app.command()
@user_errors
def build(
    as_of: Annotated[
        str | None, typer.Option(help="Build as of this date (later events are hidden).")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Build the dataset and every model that exists, and publish them as the current build."""
    from tailor.build import build as run_build
    from tailor.build import builds_dir

    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh, progress_bar(not json_) as update:
        info = run_build(
            wh,
            builds_dir(settings.db),
            as_of=as_of,
            weights=settings.weights,
            recommenders=settings.recommenders,
            progress=update,
        )

    def render() -> None:
        out.print(f"build {info.build_id} published at {info.path}")
        _print_mapping("dataset", info.manifest["dataset"])
        _print_selection(info.manifest.get("recommenders") or {})

    emit(info.manifest, json_, render)


def _print_selection(selection: dict[str, Any]) -> None:
    results = selection.get("validation") or {}
    if not results or "skipped" in results:
        return
    k = selection["k"]
    table = Table(
        "recommender", f"recall@{k}", f"ndcg@{k}", f"precision@{k}",
        title=f"validation on the last {selection['validation_days']:g} days",
    )  # fmt: skip
    for name, figures in results.items():
        mark = " (default)" if name == selection["default"] else ""
        table.add_row(
            name + mark,
            f"{figures[f'recall@{k}']:.4f}",
            f"{figures[f'ndcg@{k}']:.4f}",
            f"{figures[f'precision@{k}']:.4f}",
        )
    out.print(table)


@app.command()
@user_errors
def recommend(
    customer: Annotated[
        list[str] | None, typer.Option("--customer", "-c", help="Customer id (repeatable).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every known customer.")] = False,
    k: Annotated[int, typer.Option("--k", min=1, help="Items per customer.")] = 10,
    exclude_purchased: Annotated[
        bool, typer.Option(help="Leave out what each customer bought before.")
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="A recommender of the build [default: the build's].")
    ] = None,
    diversity: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="MMR re-ranking across categories: 0 = relevance."),
    ] = 0.0,
    max_per_category: Annotated[
        int | None, typer.Option(min=1, help="At most N items of one category per list.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the list to FILE.parquet or FILE.csv.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Recommendations from the current build: customer_id, rank, item_id, score, reason.
    Customers who opted out of personalization get the non-personalized list."""
    from tailor.build import builds_dir, current_build, load_recommender
    from tailor.privacy.consent import respect_personalization

    if bool(customer) == all_:
        raise TailorError("name customers with --customer ID, or pass --all")
    settings = load_settings(db, config)
    info = current_build(builds_dir(settings.db))
    recommender = load_recommender(info, model)
    if all_:
        ids = recommender.dataset_.customer_ids
    else:  # as the build names them: pseudonyms where it has them
        ids = np.asarray(CustomerIds.of(info).lookup_all(customer), dtype=object)
    with err.status("recommending"):
        frame = recommender.recommend(
            ids,
            k=k,
            exclude_purchased=exclude_purchased,
            diversity=diversity,
            max_per_category=max_per_category,
        )
    frame = respect_personalization(frame, recommender, _opted_out(settings, info), list(ids), k)
    if output is not None:
        _write_table(frame, output)
    if json_:
        emit(frame.to_dict(orient="records"), True, lambda: None)
    elif output is None:
        _print_frame(frame, f"recommendations ({recommender.name})")
    else:
        out.print(f"{len(frame):,} recommendations written to {output}")


def _opted_out(settings: Settings, info: Any, purpose: str = "personalization") -> set[str]:
    """Who opted out of ``purpose`` now, from the warehouse; when a running server holds it,
    as the build saw it (with a warning)."""
    from tailor.build import CONSENT_FILE
    from tailor.privacy.consent import load_opt_outs, opted_out

    try:
        with open_warehouse(settings, read_only=True) as wh:
            return opted_out(wh, purpose)
    except TailorError:
        err.print(
            f"warning: {settings.db} is in use (by tailor serve?); consent as of build "
            f"{info.build_id} applies — the server applies changes since at once",
            highlight=False,
        )
        return load_opt_outs(info.path / CONSENT_FILE, purpose)


@app.command()
@user_errors
def similar(
    item: Annotated[str, typer.Argument(help="Item id.")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many similar items.")] = 10,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Items bought by the same customers as ITEM: item_id, rank, similar_item_id, score, reason."""
    from tailor.build import builds_dir, current_build, load_recommender

    settings = load_settings(db, config)
    recommender = load_recommender(current_build(builds_dir(settings.db)))
    frame = recommender.similar_items([item], k=k)
    if json_:
        emit(frame.to_dict(orient="records"), True, lambda: None)
        return
    _print_frame(frame, f"similar to {item}")


@app.command()
@user_errors
def rules(
    min_support: Annotated[
        float | None,
        typer.Option(help="Least share of baskets holding both items [default: the build's]."),
    ] = None,
    min_confidence: Annotated[float, typer.Option(help="Least confidence of a rule.")] = 0.0,
    max_len: Annotated[
        int, typer.Option(min=2, help="Largest itemset of a rule: 3 adds triples (FP-growth).")
    ] = 2,
    output: Annotated[
        Path | None, typer.Option(help="Write the rules to FILE.parquet or FILE.csv.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Items bought together: antecedents, consequents, support, confidence, lift."""
    from tailor.build import builds_dir, current_build, load_dataset, load_rules
    from tailor.recommend.rules import association_rules, stricter_rules

    settings = load_settings(db, config)
    info = current_build(builds_dir(settings.db))
    found = load_rules(info)
    support = found.attrs["min_support"] if min_support is None else min_support
    if support < found.attrs["min_support"] or max_len > 2:  # the build kept pairs only
        with err.status("counting baskets"):
            found = association_rules(load_dataset(info), support, min_confidence, max_len)
    else:
        found = stricter_rules(found, support, min_confidence)
    frame = found[["antecedents", "consequents", "support", "confidence", "lift"]]
    frame = frame.reset_index(drop=True)
    if output is not None:
        _write_table(frame if output.suffix.lower() == ".parquet" else _flat(frame), output)
    if json_:
        emit(frame.to_dict(orient="records"), True, lambda: None)
    elif output is None:
        _print_frame(_flat(frame.head(50)), f"{len(frame):,} rules (the 50 of highest lift)")
    else:
        out.print(f"{len(frame):,} rules written to {output}")


@app.command()
@user_errors
def bundles(
    item: Annotated[str, typer.Argument(help="Item id.")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many items.")] = 10,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Items frequently bought together with ITEM: item_id, rank, bundle_item_id, support,
    confidence, lift, reason."""
    from tailor.build import builds_dir, current_build, load_dataset, load_rules
    from tailor.recommend.rules import bundles as top_bundles

    settings = load_settings(db, config)
    info = current_build(builds_dir(settings.db))
    found = load_rules(info)
    dataset = load_dataset(info)
    column = dataset.item_index([item])[0]
    if column < 0:
        raise TailorError(f"unknown item {item!r}")
    frame = top_bundles(found, dataset.item_ids[[column]].tolist()[0], k=k)
    if json_:
        emit(frame.to_dict(orient="records"), True, lambda: None)
        return
    _print_frame(frame, f"bought together with {item}")


def _flat(frame: Any) -> Any:
    """Itemsets as text for CSV and tables: ``(1, 2)`` -> ``"1 + 2"``."""
    flat = frame.copy()
    for column in ("antecedents", "consequents"):
        flat[column] = flat[column].map(lambda ids: " + ".join(map(str, ids)))
    return flat


@app.command()
@user_errors
def evaluate(
    split: Annotated[str, typer.Option(help="temporal, last-basket or random.")] = "temporal",
    test_days: Annotated[float, typer.Option(help="Days of the temporal test period.")] = 28,
    test_fraction: Annotated[float, typer.Option(help="Share held out by --split random.")] = 0.2,
    holdout_by: Annotated[
        str, typer.Option(help="--split random holds out a share of each customer's or item's.")
    ] = "customer",
    relevance_threshold: Annotated[
        float | None,
        typer.Option(help="Only test ratings (weights) at least this count as relevant."),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="List length evaluated.")] = 20,
    exclude_purchased: Annotated[
        bool, typer.Option(help="Evaluate exploration: only items new to the customer count.")
    ] = False,
    as_of: Annotated[str | None, typer.Option(help="Evaluate as of this date.")] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write an HTML report with charts (index.html + PNGs) here."),
    ] = None,
    fairness: Annotated[
        bool,
        typer.Option(
            "--fairness",
            help="Also audit fairness: quality per customer group, exposure per item attribute.",
        ),
    ] = False,
    fair_exposure: Annotated[
        str | None,
        typer.Option(
            metavar="ATTRIBUTE",
            help="Also re-rank for exposure parity by this item attribute (e.g. brand) and "
            "report what it costs; implies --fairness.",
        ),
    ] = None,
    fair_strength: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="How far parity moves towards the purchase mix."),
    ] = 1.0,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Every recommender on the same split, side by side, with 95 % bootstrap intervals."""
    from tailor.build import SELECTION_K, VALIDATION_DAYS
    from tailor.dataset import Dataset
    from tailor.evaluate.fairness import audit, parity_candidates
    from tailor.evaluate.runner import CURVE_KS, evaluate_models, pick_default, rfm_segments
    from tailor.evaluate.runner import split as make_split
    from tailor.recommend import REGISTRY, factory

    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh:
        dataset = Dataset.from_warehouse(wh, as_of=as_of, weights=settings.weights)
        train, test = make_split(dataset, split, test_days, test_fraction, holdout_by=holdout_by)
        # Segments as of the training cut: the test period never moves a customer's segment.
        segments = rfm_segments(wh, train)
    factories = {name: factory(name) for name in settings.recommenders or REGISTRY}
    fairness = fairness or fair_exposure is not None
    lists: dict[str, Any] | None = {} if fairness else None
    with progress_bar(not json_) as update:
        # The report's recall curve comes from the same lists as every other figure.
        curve_ks = CURVE_KS if report is not None else None
        results = evaluate_models(
            train, test, factories, k, exclude_purchased, progress=update, curve_ks=curve_ks,
            relevance_threshold=relevance_threshold, segments=segments, lists=lists,
            lists_width=parity_candidates(k) if fair_exposure is not None else 0,
        )  # fmt: skip
        # The default is chosen as the build chooses it: on a validation period carved from
        # the training data, never by the test figures above.
        inner_train, valid = train.temporal_split(VALIDATION_DAYS)
        validation = evaluate_models(
            inner_train, valid, factories, SELECTION_K, exclude_purchased, confidence=False,
            relevance_threshold=relevance_threshold,
        )  # fmt: skip
    data = {
        "split": {
            "kind": split,
            "test_days": test_days if split == "temporal" else None,
            "test_fraction": test_fraction if split == "random" else None,
            "holdout_by": holdout_by if split == "random" else None,
            "relevance_threshold": relevance_threshold,
            "k": k,
            "exclude_purchased": exclude_purchased,
            "train": train.summary(),
            "test": test.summary(),
        },
        "models": results,
        "default": pick_default(validation, SELECTION_K),
    }
    if lists is not None:
        # Of the default in full, of every model in brief (tailor.evaluate.fairness).
        data["fairness"] = audit(
            train, lists, data["default"], k, parity_attribute=fair_exposure,
            strength=fair_strength,
        )  # fmt: skip

    def render() -> None:
        metrics = [f"{m}@{k}" for m in ("recall", "ndcg", "precision", "map", "hit_rate")]
        table = Table("model", *metrics, "coverage", title=f"{split} split, k={k}")
        for name, figures in results.items():
            mark = " (default)" if name == data["default"] else ""
            table.add_row(
                name + mark,
                *(f"{figures[m]:.4f}" for m in metrics),
                f"{figures['coverage']:.4f}",
            )
        out.print(table)
        by_segment = {name: f["segments"] for name, f in results.items() if "segments" in f}
        if by_segment:
            labels = list(next(iter(by_segment.values())))
            table = Table("segment", "customers", *by_segment, title=f"recall@{k} by RFM segment")
            for label in labels:
                first = next(iter(by_segment.values()))[label]
                cells = (f"{s[label][f'recall@{k}']:.4f}" for s in by_segment.values())
                table.add_row(label, f"{first['customers']:,}", *cells)
            out.print(table)
        if "fairness" in data:
            _print_fairness(data["fairness"], k)

    emit(data, json_, render)
    if report is not None:
        # The report is drawn from exactly the dict --json prints, so the two never disagree.
        from tailor.evaluate.report import write_report  # matplotlib only when asked

        index = write_report(json.loads(json.dumps(data, default=str)), report)
        # On stderr under --json, so that stdout stays one JSON document.
        (err if json_ else out).print(f"report written to {index}", markup=False, highlight=False)


def _print_fairness(audit: dict[str, Any], k: int) -> None:
    """The fairness audit of `tailor evaluate` as tables: groups, exposure, parity."""
    model = audit["model"]
    table = Table("attribute", "worst group", "best group", "worst / best",
                  title=f"{model}: recall@{k} by customer group")  # fmt: skip
    for attribute, quality in audit["groups"].items():
        key, groups = f"recall@{k}", quality["groups"]
        worst, best = quality["worst"][key], quality["best"][key]
        if worst is None or best is None:
            table.add_row(attribute, "—", "—", "too few customers per group")
            continue
        table.add_row(
            attribute,
            f"{worst} ({groups[worst][key]:.4f})",
            f"{best} ({groups[best][key]:.4f})",
            f"{quality['worst_best_ratio'][key]:.2f}",
        )
    if audit["groups"]:
        out.print(table)
    else:
        out.print("no customer attribute forms groups (age band, income band, ...)")
    for attribute, shown in audit["exposure"].items():
        title = f"{model}: exposure by {attribute} (gap {shown['gap']:.3f})"
        table = Table(attribute, "share of slots", "share of purchases", "ratio", title=title)
        for value, shares in list(shown["values"].items())[:12]:
            table.add_row(value, f"{shares['slots']:.3f}", f"{shares['purchases']:.3f}",
                          f"{shares['ratio']:.2f}")  # fmt: skip
        out.print(table)
    parity = audit.get("parity")
    if parity:
        before, after = parity["before"], parity["after"]
        out.print(
            f"exposure parity by {parity['attribute']} (strength {parity['strength']:g}): "
            f"recall@{k} {before[f'recall@{k}']:.4f} -> {after[f'recall@{k}']:.4f}, "
            f"NDCG@{k} {before[f'ndcg@{k}']:.4f} -> {after[f'ndcg@{k}']:.4f}, "
            f"exposure gap {before['exposure_gap']:.3f} -> {after['exposure_gap']:.3f}",
            markup=False, highlight=False,
        )  # fmt: skip


def _write_table(frame: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise TailorError(f"{path}: write .parquet or .csv")


@app.command()
@user_errors
def tune(
    model: Annotated[str, typer.Argument(help="A recommender, e.g. recency_frequency.")],
    param: Annotated[
        list[str],
        typer.Option("--param", "-p", help="NAME=V1,V2,...: values to try (repeatable)."),
    ],
    budget: Annotated[int, typer.Option(min=1, help="Settings to try at most.")] = 12,
    k: Annotated[int, typer.Option("--k", min=1, help="List length evaluated.")] = 20,
    validation_days: Annotated[float, typer.Option(help="Days of the validation period.")] = 28,
    as_of: Annotated[
        str | None, typer.Option(help="Tune on the data as of this date (keep a test after it).")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Search a recommender's hyper-parameters on a validation period carved from the data."""
    from tailor.dataset import Dataset
    from tailor.evaluate.tuning import grid_search

    grid = {}
    for item in param:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise TailorError(f"--param {item!r}: write NAME=V1,V2,..., e.g. half_life_days=30,90")
        grid[name.strip()] = [_value(v.strip()) for v in values.split(",")]
    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh:
        dataset = Dataset.from_warehouse(wh, as_of=as_of, weights=settings.weights)
    with progress_bar(not json_) as update:
        frame = grid_search(dataset, model, grid, k, validation_days, budget, progress=update)
    emit(
        frame.to_dict(orient="records"),
        json_,
        lambda: _print_frame(frame, f"{model}: validation on the last {validation_days:g} days"),
    )


def _value(text: str) -> Any:
    """A hyper-parameter value typed on the command line: int, float, None or text."""
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@app.command()
@user_errors
def demo(
    force: Annotated[
        bool, typer.Option(help="Replace a warehouse at --db even if it is not the demo's.")
    ] = False,
    serve_after: Annotated[
        bool | None,
        typer.Option(
            "--serve/--no-serve",
            help="Then serve the dashboard and API [default: when run in a terminal, not CI].",
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve on.")] = 8000,
    pseudonymize: Annotated[
        bool, typer.Option(help="Store the households under pseudonyms ($TAILOR_PSEUDONYM_KEY).")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Load The Complete Journey into a fresh warehouse, build everything, print a summary,
    then serve the dashboard (in a terminal)."""
    import os

    from tailor.demo import run_demo

    settings = load_settings(db, config)
    with progress_bar(not json_) as update:
        result = run_demo(
            settings.db, force=force, recommenders=settings.recommenders, progress=update,
            encryption_key=keys.warehouse_key(settings), pseudonymize=pseudonymize,
        )  # fmt: skip
    data = {
        "db": str(result.db),
        "ingest_seconds": result.ingest_seconds,
        "ingested": [r.as_dict() for r in result.reports],
        "stats": result.stats,
        "build": result.build.manifest,
    }

    def render() -> None:
        table = Table("kind", "file", "rows", "seconds", title="The Complete Journey, ingested")
        for r in result.reports:
            table.add_row(r.kind, Path(r.file).name, f"{r.rows_inserted:,}", f"{r.seconds:.2f}")
        out.print(table)
        out.print(f"ingest took {result.ingest_seconds:.1f} s")
        _print_mapping("warehouse", {k: v for k, v in result.stats.items() if k != "tables"})
        out.print(f"build {result.build.build_id} published at {result.build.path}")
        _print_mapping("dataset", result.build.manifest["dataset"])
        out.print(f"try: tailor stats --db {result.db}")

    emit(data, json_, render)
    if serve_after is None:
        serve_after = sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("CI")
    if serve_after and not json_:
        _serve_demo(settings, port)


def _serve_demo(settings: Settings, port: int) -> None:
    """Serve the demo warehouse, as `tailor serve` does, with a fresh read key for the
    dashboard's login."""
    from tailor.serve.auth import create_key

    with open_warehouse(settings) as wh:
        key = create_key(wh, "read")
    out.print(
        f"dashboard: http://127.0.0.1:{port}/  (log in with the read key {key}; Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    serve(host="127.0.0.1", port=port, cors_origin=None, db=settings.db, config=None)


@app.command()
@user_errors
def generate(
    directory: Annotated[Path, typer.Argument(help="Folder to write the files into.")],
    customers: Annotated[
        int | None, typer.Option(help="Number of customers [default: 200; 1000 --ratings].")
    ] = None,
    items: Annotated[
        int | None, typer.Option(help="Number of items [default: 300; 500 --ratings].")
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="Days of history [default: 180; 365 --ratings].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    format_: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl.")] = "csv",
    ratings: Annotated[
        bool,
        typer.Option(
            "--ratings",
            help="Write explicit 1-5 star ratings instead of a shop [default size: 1000 "
            "customers, 500 items, 30 ratings each, over 365 days].",
        ),
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Also ingest the files into this warehouse."),
    ] = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Write a seeded synthetic retailer export (events, items, customers, campaigns...)."""
    from tailor.synthetic import generate as draw
    from tailor.synthetic import generate_ratings, write

    sizes = {"n_customers": customers, "n_items": items, "days": days}
    given = {name: value for name, value in sizes.items() if value is not None}
    data = generate_ratings(seed=seed, **given) if ratings else draw(seed=seed, **given)
    paths = write(data, directory, fmt=format_)
    result: dict[str, Any] = {"files": {name: str(path) for name, path in paths.items()}}
    if db is not None:
        # Each file through the same path `tailor ingest` takes (with its keys, if any).
        with open_warehouse(load_settings(db, None)) as wh, progress_bar(not json_) as update:
            result["ingested"] = [
                r.as_dict()
                for name, path in paths.items()
                for r in ingest_files(wh, name.replace("_", "-"), [path], progress=update)
            ]

    def render() -> None:
        for name, path in paths.items():
            out.print(f"{name}: {path}")
        if db is not None:
            out.print(f"ingested into {db}")

    emit(result, json_, render)


# -- customer intelligence ---------------------------------------------------------------------


def _records(frame: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, NaN as null."""
    plain = frame.astype(object).where(frame.notna(), None)
    return json.loads(json.dumps(plain.to_dict(orient="records"), default=str))


def _intelligence(settings: Settings) -> Any:
    from tailor.build import builds_dir, current_build
    from tailor.customers.intelligence import CustomerIntelligence

    info = current_build(builds_dir(settings.db))
    return info, CustomerIntelligence.load(info.path / "customers")


@app.command()
@user_errors
def report(
    output: Annotated[
        Path, typer.Option(help="Folder of the report: index.html and its PNG charts.")
    ],
    as_of: Annotated[
        str | None, typer.Option(help="Report on the events up to this date [default: all].")
    ] = None,
    horizon_weeks: Annotated[
        int, typer.Option(min=1, help="Weeks the sales forecast looks ahead.")
    ] = 8,
    dp_epsilon: Annotated[
        float | None,
        typer.Option(
            help="Publish differentially private figures only, spending this ε of the privacy "
            "budget (see docs/differential-privacy.md)."
        ),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """The business report: sales by week, department, store and segment, basket KPIs,
    campaigns, top movers, customer flow and a sales forecast, as a page with PNG charts."""
    from tailor.insights.reports import KPI_NAMES, write_report

    settings = load_settings(db, config)
    if dp_epsilon is not None:
        _dp_report(settings, output, as_of, dp_epsilon, json_)
        return
    with open_warehouse(settings, read_only=True) as wh, progress_bar(not json_) as update:
        info = write_report(wh, output, as_of=as_of, progress=update, horizon_weeks=horizon_weeks)
    data = info.as_dict()

    def render() -> None:
        out.print(f"report written to {info.path}", markup=False, highlight=False, soft_wrap=True)
        title = f"the 4 weeks to {data['last_day']} (data from {data['first_day']})"
        table = Table("measure", "value", "vs the 4 weeks before", title=title)
        for key, name in KPI_NAMES.items():
            kpi = info.kpis[key]
            change = "—" if kpi["change"] is None else f"{kpi['change']:+.1%}"
            digits = 0 if key in ("customers", "baskets") else 2
            table.add_row(name, f"{kpi['value']:,.{digits}f}", change)
        out.print(table)
        for key, note in info.sections.items():
            if note:
                err.print(f"{key}: {note}", markup=False, highlight=False, soft_wrap=True)

    emit(data, json_, render)


def _dp_report(
    settings: Settings, output: Path, as_of: str | None, epsilon: float, json_: bool
) -> None:
    from tailor.insights.reports import write_dp_report
    from tailor.privacy.dp import Bounds

    bounds = Bounds.from_mapping(settings.privacy.dp_bounds)
    with open_warehouse(settings) as wh:  # for writing: the ledger is in the warehouse
        info = write_dp_report(
            wh, output, epsilon, as_of=as_of, budget=settings.privacy.dp_budget, bounds=bounds,
            channel="cli",
        )  # fmt: skip
    data = info.as_dict()
    ledger = info.ledger

    def render() -> None:
        out.print(
            f"differentially private report written to {info.path}: ε = {data['epsilon']:g} "
            f"spent, {ledger['spent']:g} of the budget of {ledger['budget']:g} in all, "
            f"{ledger['remaining']:g} left",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        table = Table("figure", "ε", "sensitivity", "noise scale")
        for name, figure in data["figures"].items():
            table.add_row(name, f"{figure['epsilon']:.3g}", f"{figure['sensitivity']:,}",
                          f"{figure['scale']:,.1f}")  # fmt: skip
        out.print(table)

    emit(data, json_, render)


@app.command()
@user_errors
def customers(
    output: Annotated[
        Path | None, typer.Option(help="Write every customer to FILE.parquet or FILE.csv.")
    ] = None,
    churn_horizon_days: Annotated[
        int | None,
        typer.Option(min=1, help="Churn = no purchase in N days [default: the build's, 28]."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows shown in the terminal table.")] = 20,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """One row per customer: RFM, segment, cluster, CLV, churn risk, anomaly, with reasons."""
    settings = load_settings(db, config)
    info, found = _intelligence(settings)
    frame = found.customers
    if churn_horizon_days is not None and churn_horizon_days != found.summary.get(
        "churn_horizon_days"
    ):
        frame = _rescore_churn(settings, found, churn_horizon_days)
    if output is not None:
        _write_table(frame, output)
    if json_:
        emit(_records(frame), True, lambda: None)
    elif output is not None:
        out.print(f"{len(frame):,} customers written to {output}")
    else:
        shown = frame.sort_values("clv", ascending=False).head(limit)
        columns = ["customer_id", "rfm_segment", "cluster", "recency_days", "frequency"]
        columns += ["monetary", "clv", "p_alive", "churn_probability", "anomaly_score"]
        _print_frame(shown[columns], f"{len(frame):,} customers, the {len(shown)} of highest value")
        out.print("all columns and reasons: --output FILE.csv or --json")


def _rescore_churn(settings: Settings, found: Any, horizon_days: int) -> Any:
    """The build's customers with churn taken at another horizon (refitted on the warehouse
    as the build saw it)."""
    import pandas as pd

    from tailor.customers.churn import Snapshots, data_end, fit_churn

    as_of = found.summary.get("as_of")
    bound = pd.Timestamp(as_of) if as_of else None
    frame = found.customers.drop(columns=["churn_probability", "churn_reason"])
    with open_warehouse(settings, read_only=True) as wh, err.status("fitting churn"):
        end = data_end(wh, bound)
        with Snapshots(wh, horizon_days, end) as snapshots:
            model = fit_churn(snapshots, end)
            ids = frame.set_index("customer_id").index
            scored = model.predict(snapshots.inputs(end), ids)
    frame = frame.join(scored.reset_index(drop=True))
    columns = list(found.customers.columns)
    return frame[columns]


@app.command()
@user_errors
def segments(
    db: DbOption = None, config: ConfigOption = None, json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:  # fmt: skip
    """RFM segments and behavioural clusters: size, share of revenue, description."""
    settings = load_settings(db, config)
    info, found = _intelligence(settings)
    data = {
        "build_id": info.build_id,
        "rfm_segments": _records(found.segments),
        "clusters": _records(found.clusters),
        "silhouette": found.summary.get("clusters", {}).get("silhouette", {}),
    }

    def render() -> None:
        rfm = found.segments[["segment", "size", "share", "revenue_share", "description"]]
        _print_frame(rfm, "RFM segments")
        columns = ["cluster", "size", "share", "revenue_share", "description"]
        _print_frame(found.clusters[columns], "behavioural clusters")

    emit(data, json_, render)


@app.command()
@user_errors
def clv(
    as_of: Annotated[
        str | None,
        typer.Option(help="Fit on purchases up to this date; later ones are the holdout."),
    ] = None,
    horizon_days: Annotated[float, typer.Option(min=1, help="Days of value predicted.")] = 365,
    discount_rate: Annotated[
        float, typer.Option(min=0.0, help="Annual discount rate, e.g. 0.1.")
    ] = 0.0,
    limit: Annotated[int, typer.Option(min=1, help="Rows shown in the terminal table.")] = 10,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Lifetime value (BG/NBD + Gamma-Gamma): parameters, per-customer value, holdout check."""
    from tailor.customers.clv import clv_report
    from tailor.customers.intelligence import purchase_values
    from tailor.dataset import as_of_bound

    settings = load_settings(db, config)
    bound = as_of_bound(as_of)
    with open_warehouse(settings, read_only=True) as wh:
        # Every purchase: those from as_of on are the holdout the report checks against.
        purchases = purchase_values(wh)
    report = clv_report(purchases, as_of=bound, horizon_days=horizon_days,
                        discount_rate_annual=discount_rate)  # fmt: skip
    data = {
        "as_of": None if bound is None else bound.isoformat(),
        "horizon_days": horizon_days,
        "parameters": report.parameters,
        "penalizer": report.penalizer,
        "holdout": report.holdout,
        "customers": _records(report.customers),
    }

    def render() -> None:
        _print_mapping("BG/NBD and Gamma-Gamma parameters", report.parameters)
        if report.holdout:
            _print_mapping("holdout: predicted vs actual", report.holdout)
        top = report.customers.sort_values("clv", ascending=False).head(limit)
        columns = ["customer_id", "frequency", "recency", "T", "p_alive", "expected_purchases"]
        _print_frame(top[[*columns, "clv"]], f"the {len(top)} most valuable customers")

    emit(data, json_, render)


@app.command()
@user_errors
def churn(
    horizon_days: Annotated[int, typer.Option(min=1, help="Churn = no purchase in N days.")] = 28,
    as_of: Annotated[str | None, typer.Option(help="Evaluate as of this date.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Churn model vs single-feature baselines on the last HORIZON days: AUC, precision, recall."""
    from tailor.customers.churn import Snapshots, data_end, evaluate_churn
    from tailor.dataset import as_of_bound

    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh, err.status("evaluating churn"):
        end = data_end(wh, as_of_bound(as_of))
        with Snapshots(wh, horizon_days, end) as snapshots:
            evaluation = evaluate_churn(snapshots, end)
    data = evaluation.as_dict()

    def render() -> None:
        frame = evaluation.metrics.reset_index()
        title = (
            f"no purchase in {horizon_days} days after {evaluation.test_cutoff.date()}: "
            f"{evaluation.n_test:,} customers, {evaluation.churn_rate:.1%} churned"
        )
        _print_frame(frame, title)
        best = evaluation.single_feature_auc.head(5).round(4).to_dict()
        _print_mapping("best single features (AUC)", best)

    emit(data, json_, render)


@app.command()
@user_errors
def anomalies(
    db: DbOption = None, config: ConfigOption = None, json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:  # fmt: skip
    """What is unusual in the last week of the build's data, with reasons."""
    settings = load_settings(db, config)
    info, found = _intelligence(settings)
    frame = found.anomalies
    if json_:
        emit(_records(frame), True, lambda: None)
        return
    week = found.summary.get("anomalies", {}).get("last_week")
    _print_frame(frame[["customer_id", "score", "reason"]], f"unusual in the week of {week}")


def _print_frame(frame: Any, title: str) -> None:
    table = Table(*frame.columns, title=title)
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)


def _print_mapping(title: str, mapping: dict[str, Any]) -> None:
    table = Table("measure", "value", title=title)
    for key, value in mapping.items():
        if isinstance(value, float):
            shown = f"{value:.4g}"
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = str(value)
        table.add_row(key, shown)
    out.print(table)


# -- marketing ---------------------------------------------------------------------------------


def _offer_scores(settings: Settings) -> Any:
    from tailor.build import builds_dir, current_build
    from tailor.marketing.targeting import OfferScores

    info = current_build(builds_dir(settings.db))
    if "skipped" in (info.manifest.get("offers") or {}):
        skipped = info.manifest["offers"]["skipped"]
        raise TailorError(f"the current build has no offer scores: {skipped}")
    found = OfferScores.load(info.path / "offers")
    opted = _opted_out(settings, info, "marketing")  # consent applies at once, not next build
    found.scores = found.scores.loc[~found.scores["customer_id"].astype(str).isin(opted)]
    return info, found


@app.command()
@user_errors
def offers(
    campaign: Annotated[
        str | None,
        typer.Option(help="Target this open campaign: its customers by redemption probability."),
    ] = None,
    budget: Annotated[
        int | None, typer.Option(min=0, help="At most N customers (the list's length).")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(min=0.0, help="A cost budget: as many customers as it pays contacts for."),
    ] = None,
    contact_cost: Annotated[
        float | None,
        typer.Option(min=0.0, help="Cost of one contact; alone: only customers worth more."),
    ] = None,
    max_per_customer: Annotated[
        int, typer.Option(min=1, help="Contact rule: at most N offers per customer.")
    ] = 1,
    evaluation: Annotated[
        bool, typer.Option(help="Show the response model's test on held-out campaigns instead.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="Write the list to FILE.csv (an email tool's) or .parquet.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows shown in the terminal table.")] = 20,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Next-best offers, or a campaign's target list: customer_id, campaign_id, offer_id,
    probability, expected_value, reason. Opted-out customers are never listed."""
    from tailor.marketing.targeting import next_best_offers, target_campaign

    settings = load_settings(db, config)
    info, found = _offer_scores(settings)
    if evaluation:
        data = found.summary.get("evaluation", {})

        def render_evaluation() -> None:
            if "skipped" in data:
                out.print(f"no evaluation: {data['skipped']}")
                return
            import pandas as pd

            frame = pd.DataFrame(data["metrics"])
            _print_frame(
                frame,
                f"offer response on held-out campaigns {', '.join(data['test_campaigns'])} "
                f"({data['n_test']:,} members, {data['redemption_rate']:.1%} redeemed)",
            )

        emit(data, json_, render_evaluation)
        return
    if found.scores.empty:
        raise TailorError(
            f"build {info.build_id} has no open campaign to offer (none runs on or after the "
            "data's last day); ingest a planned campaign (campaigns, campaign offers) and rebuild"
        )
    if campaign is not None:
        frame = target_campaign(found.scores, campaign, budget, max_cost, contact_cost)
        frame = frame.groupby("customer_id", sort=False).head(max_per_customer)
        title = f"campaign {campaign}: {len(frame):,} customers by redemption probability"
    else:
        if max_cost is not None or contact_cost is not None:
            raise TailorError("--max-cost and --contact-cost need --campaign")
        frame = next_best_offers(found.scores, max_per_customer)
        if budget is not None:
            frame = frame.head(budget)
        title = f"next best offers: {len(frame):,} rows, highest expected value first"
    if output is not None:
        _write_table(frame, output)
    if json_:
        emit(_records(frame), True, lambda: None)
    elif output is not None:
        out.print(f"{len(frame):,} rows written to {output}")
    else:
        columns = ["customer_id", "campaign_id", "offer_id", "probability", "expected_value"]
        _print_frame(frame[columns].head(limit), title)
        out.print("reasons: --output FILE.csv or --json")


@app.command()
@user_errors
def service(
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Products to suggest.")] = 5,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Talking points for a service agent: segment, value, churn risk and reasons, recent
    returns, the next best offer and products to suggest."""
    from tailor.build import load_recommender
    from tailor.marketing.service import recent_returns, service_view
    from tailor.privacy.consent import respect_personalization
    from tailor.recommend.base import describe_items

    settings = load_settings(db, config)
    info, found = _intelligence(settings)
    key = str(lookup_id(info, customer)).strip()
    rows = found.customers.loc[found.customers["customer_id"].astype(str) == key]
    if rows.empty:
        raise TailorError(f"unknown customer {customer!r} in build {info.build_id}")
    try:
        scores = _offer_scores(settings)[1].scores
        mine = scores.loc[scores["customer_id"].astype(str) == key]
    except TailorError:
        mine = None
    recommender = load_recommender(info)
    known = rows["customer_id"].to_numpy(dtype=object)
    recommendations = recommender.recommend(known, k=k, exclude_purchased=True)
    recommendations = respect_personalization(
        recommendations, recommender, _opted_out(settings, info), list(known), k
    )
    ds = recommender.dataset_
    columns = ds.item_index(recommendations["item_id"])
    recommendations["title"] = describe_items(ds, columns) if len(columns) else []
    with open_warehouse(settings, read_only=True) as wh:
        returns = recent_returns(wh, known[0])
    view = service_view(_records(rows)[0], mine, recommendations, returns)

    def render() -> None:
        segment = view["segment"] or "no segment"
        out.print(f"[bold]customer {view['customer_id']}[/bold] ({segment})")
        for n, point in enumerate(view["talking_points"], 1):
            out.print(f"{n}. {point}", highlight=False)

    emit(json.loads(json.dumps(view, default=str)), json_, render)


# -- serving -----------------------------------------------------------------------------------


@app.command()
@user_errors
def forecast(
    horizon_weeks: Annotated[int, typer.Option(min=1, help="Weeks ahead to forecast.")] = 8,
    by: Annotated[
        str | None,
        typer.Option(help="department: also forecast each of the --top departments of most sales."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="With --by, how many departments.")] = 8,
    backtest_windows: Annotated[
        int, typer.Option(min=1, help="Rolling-origin backtest windows of --horizon-weeks each.")
    ] = 3,
    level: Annotated[
        float, typer.Option(min=0.5, max=0.99, help="Coverage of the prediction intervals.")
    ] = 0.9,
    as_of: Annotated[
        str | None, typer.Option(help="Forecast from the sales up to this date.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Weekly sales forecasts with prediction intervals (ETS), backtested against seasonal-naive
    and last-value (MASE, sMAPE)."""
    from tailor.insights.forecast import forecast_sales

    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh, err.status("forecasting"):
        found = forecast_sales(
            wh, horizon_weeks=horizon_weeks, by=by, backtest_windows=backtest_windows,
            level=level, top=top, as_of=as_of,
        )  # fmt: skip
    data = found.to_dict()

    def render() -> None:
        title = f"backtest: {found.backtest_windows} x {horizon_weeks} weeks"
        table = Table("series", "model", "MASE", "sMAPE %", title=title)
        for row in found.backtest.itertuples(index=False):
            name = row.model
            if name == "ets":
                name = f"ets ({found.models[row.series]})"
            elif name == "seasonal_naive":
                name = f"seasonal_naive ({found.season_weeks} weeks)"
            table.add_row(row.series, name, f"{row.mase:.3f}", f"{row.smape:.2f}")
        out.print(table)
        table = Table("series", "week", "forecast", f"lower {level:.0%}", f"upper {level:.0%}",
                      title=f"weekly sales after {data['last_week']}")  # fmt: skip
        for row in found.forecasts.itertuples(index=False):
            table.add_row(row.series, str(row.week.date()), f"{row.forecast:,.0f}",
                          f"{row.lower:,.0f}", f"{row.upper:,.0f}")  # fmt: skip
        out.print(table)
        for note in found.notes:
            out.print(f"note: {note}", highlight=False)

    emit(data, json_, render)


@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Origin browsers may call from (repeatable) [default: env]."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve the HTTP API (docs at /docs) over the current build; holds the warehouse."""
    import uvicorn

    from tailor.serve import ServeSettings, create_app

    settings = ServeSettings.resolve(db, config, cors_origin)
    # The keys of --config for the server's reads of build files (its requests run in copies of
    # this context).
    keys.activate(read_settings(db, config))
    application = create_app(settings)
    err.print(f"serving {settings.db} on http://{host}:{port} (API docs at /docs)")
    uvicorn.run(application, host=host, port=port, log_level="warning")


keys_app = typer.Typer(help="API keys of the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@user_errors
def keys_create(
    role: Annotated[str, typer.Option(help="read, write or admin.")],
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Create an API key of ROLE and print it, once (only its hash is stored)."""
    from tailor.serve.auth import create_key

    settings = load_settings(db, config)
    with open_warehouse(settings) as wh:
        key = create_key(wh, role)
    emit(
        {"key": key, "role": role},
        json_,
        lambda: out.print(f"{role} key (shown once, keep it safe): {key}", highlight=False),
    )


consent_app = typer.Typer(help="Customers' consent to personalization, marketing, analytics.")
app.add_typer(consent_app, name="consent")


def _yes_no(value: str | None, flag: str) -> bool | None:
    if value is None:
        return None
    answer = {"yes": True, "no": False}.get(value.strip().lower())
    if answer is None:
        raise TailorError(f"{flag}: say yes or no, not {value!r}")
    return answer


@consent_app.command("set")
@user_errors
def consent_set(
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    personalization: Annotated[
        str | None, typer.Option(help="yes|no: personalized recommendations.")
    ] = None,
    marketing: Annotated[str | None, typer.Option(help="yes|no: offers and campaigns.")] = None,
    analytics: Annotated[
        str | None, typer.Option(help="yes|no: segments, reports and model training.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Record a customer's consent. Personalization and marketing apply at once; analytics from
    the next build. (While `tailor serve` runs, use PUT /v1/customers/{id}/consent.)"""
    from tailor.privacy.consent import set_consent

    flags = {
        "personalization": _yes_no(personalization, "--personalization"),
        "marketing": _yes_no(marketing, "--marketing"),
        "analytics": _yes_no(analytics, "--analytics"),
    }
    settings = load_settings(db, config)
    with open_warehouse(settings) as wh:
        key = str(lookup_id(wh, customer)).strip()
        now = set_consent(wh, key, **flags)
    data = {"customer_id": key, **now}
    emit(data, json_, lambda: _print_mapping(f"consent of customer {customer}", now))


@consent_app.command("show")
@user_errors
def consent_show(
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """A customer's consent flags (None: no objection recorded)."""
    from tailor.privacy.consent import consent_of

    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh:
        key = str(lookup_id(wh, customer)).strip()
        now = consent_of(wh, [key]).iloc[0].to_dict()
    data = {"customer_id": key, **now}
    emit(data, json_, lambda: _print_mapping(f"consent of customer {customer}", now))


@app.command()
@user_errors
def forget(
    customer: Annotated[str | None, typer.Argument(help="The customer id to forget.")] = None,
    rebuild: Annotated[
        bool,
        typer.Option(help="Retrain every model now instead of folding the customer out."),
    ] = False,
    check: Annotated[
        bool, typer.Option(help="Only say whether CUSTOMER was forgotten (from the audit log).")
    ] = False,
    log: Annotated[bool, typer.Option(help="List the audit log of erasures.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Forget CUSTOMER everywhere: warehouse, its file, every build, and log it (hash only)."""
    from tailor.build import builds_dir
    from tailor.privacy.erasure import audit_key, erasure_log, forget, subject_hash

    settings = load_settings(db, config)
    if check and customer is None:
        raise TailorError("--check: name the customer id to look for")
    if log or check:
        with open_warehouse(settings, read_only=True) as wh:
            entries = erasure_log(wh)
            if check:  # as the warehouse names them: a pseudonym where it has them
                customer = str(lookup_id(wh, customer))
        if check:
            subject = subject_hash(audit_key(settings.db), customer)
            entries = entries.loc[entries["subject"] == subject]
            records = _records(entries)
            data = {"forgotten": bool(records), **(records[-1] if records else {})}
            emit(data, json_, lambda: _print_mapping("erasure", data))
            return
        emit(_records(entries), json_, lambda: _print_frame(entries, "erasures"))
        return
    if customer is None:
        raise TailorError("name the customer id to forget (or --log)")
    with (
        open_warehouse(settings) as wh,
        progress_bar(not json_ and rebuild) as update,
    ):
        done = forget(
            wh,
            builds_dir(settings.db),
            str(lookup_id(wh, customer)),  # a pseudonym where the warehouse has them
            rebuild=rebuild,
            weights=settings.weights,
            recommenders=settings.recommenders,
            progress=update,
        )
    data = done.as_dict()

    def render() -> None:
        if not done.held:
            out.print("Tailor held nothing on this customer; the request is logged.")
        _print_mapping("forgotten", data)

    emit(data, json_, render)


privacy_app = typer.Typer(help="Differential privacy: the ledger of ε spent.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


@privacy_app.command("ledger")
@user_errors
def privacy_ledger(
    db: DbOption = None, config: ConfigOption = None, json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:  # fmt: skip
    """The ε spent by differentially private releases of this warehouse's data, and the budget
    left ([privacy] dp_budget in tailor.toml, or $TAILOR_DP_BUDGET)."""
    from tailor.privacy.dp import ledger_summary

    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh:
        data = ledger_summary(wh, settings.privacy.dp_budget)

    def render() -> None:
        title = (
            f"{data['dataset']}: ε {data['spent']:g} spent of {data['budget']:g}, "
            f"{data['remaining']:g} left"
        )
        table = Table("entry", "when (UTC)", "ε", "release", "as of", "asked by", title=title)
        for e in data["entries"]:
            table.add_row(str(e["entry_id"]), e["spent_at"][:19].replace("T", " "),
                          f"{e['epsilon']:g}", e["release"], e["as_of"] or "—",
                          e["channel"] or "—")  # fmt: skip
        out.print(table)

    emit(data, json_, render)


@app.command()
@user_errors
def encrypt(
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Encrypt a plain warehouse and its builds with the configured key ($TAILOR_ENCRYPTION_KEY,
    $TAILOR_ENCRYPTION_KEY_FILE or [privacy] encryption_key_file; never an option)."""
    from tailor.errors import EncryptionError
    from tailor.privacy.crypto import encrypt_existing

    settings = load_settings(db, config)
    secret = keys.encryption_secret(settings)
    if secret is None:
        raise EncryptionError(f"no encryption key: {keys.how_to_set(keys.ENCRYPTION)}")
    data = encrypt_existing(settings.db, secret, settings.memory_limit)
    emit(
        data,
        json_,
        lambda: out.print(
            f"{data['warehouse']} encrypted, and {data['build_files']} build files",
            highlight=False,
        ),
    )


@app.command()
@user_errors
def pseudonym(
    customer: Annotated[list[str], typer.Argument(help="Customer ids.")],
    db: DbOption = None,
    config: ConfigOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """The pseudonyms a pseudonymized warehouse names CUSTOMERs by (to join Tailor's answers
    back to your own ids)."""
    from tailor.errors import PseudonymError

    settings = load_settings(db, config)
    with open_warehouse(settings, read_only=True) as wh:
        ids = CustomerIds.of(wh, keys.pseudonym_secret(settings))
    if not ids.pseudonymized:
        raise PseudonymError(f"{settings.db}: the warehouse stores customer ids as they are")
    pairs = zip(customer, ids.lookup_all(customer), strict=True)
    data = [{"customer_id": c.strip(), "pseudonym": p} for c, p in pairs]

    def render() -> None:
        table = Table("customer_id", "pseudonym", title="pseudonyms")
        for row in data:
            table.add_row(row["customer_id"], row["pseudonym"])
        out.print(table)

    emit(data, json_, render)
