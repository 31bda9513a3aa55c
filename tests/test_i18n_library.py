"""The library speaks Chinese: every figure builder, lesson, tuning step, config option and error,
and the diagnostics of real small runs, rendered in zh-Hans, leave no English sentence behind
(three or more English words in a row, once code names, identifiers and units are set aside);
``nnviz diagnose --lang`` prints its text in the language asked for."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nnviz import i18n
from nnviz.analysis import diagnostics, stats, tuning, views
from nnviz.analysis.tuning import frames as tframes
from nnviz.config import RunConfig, options
from nnviz.engine.data import DATASETS
from nnviz.engine.initializers import BIAS_INITS, INITIALIZERS
from nnviz.engine.models import MODELS
from nnviz.engine.training import train
from nnviz.errors import NnvizError
from nnviz.figures import curves as fc
from nnviz.figures import epoch_view as ev
from nnviz.figures import health as fh
from nnviz.figures import tuning as ft
from nnviz.figures import weights as fw
from nnviz.figures.captions import CAPTIONS
from nnviz.i18n import language, t
from nnviz.presets import PRESETS
from nnviz.store.format import HistoryRow
from nnviz.store.runs import RunStore

CJK = re.compile(r"[\u4e00-\u9fff]")
WORD = r"[A-Za-z][A-Za-z'’]*"
SENTENCE = re.compile(rf"{WORD}(?: {WORD}){{2,}}")
# Code and numbers are not English: `spans`, dotted / underscored names (conv1.weight,
# kaiming_normal, nnviz.watch(...)), and anything with = or brackets glued to it.
CODE = re.compile(r"`[^`]*`|\S*[._=()\[\]{}<>%#@\\/|]\S*")
# Names a translation keeps as they are (people, paper titles, products, layer types).
NAMES = ("et al", "Glorot & Bengio", "Keskar & Socher", "Kaiming (He)", "Xavier (Glorot)",
         "Leaky ReLU", "Focal Loss", "Fashion-MNIST", "Dying ReLU and initialization")


def english(text: str) -> list[str]:
    """The English sentences (3+ words in a row) left in ``text``."""
    text = CODE.sub(" ", re.sub(r"\{[^{}]*\}", " ", text))  # a {field} is filled in later
    for name in NAMES:
        text = text.replace(name, " ")
    return SENTENCE.findall(text)


def test_the_detector_finds_sentences_and_ignores_code():
    assert english("the loss falls fast") == ["the loss falls fast"]
    assert english("打开 conv1.weight 与 kaiming_normal，用 nnviz.watch(model, optimizer)") == []
    assert english("He et al. 2015 与 Glorot & Bengio 2010 的 ReLU 和 SGD") == []
    assert english("学习率 lr too high") == ["lr too high"]


def strings(value: Any, skip: tuple[str, ...] = ("template", "meta", "family")
            ) -> Iterable[str]:
    """Every string inside a plotly figure's JSON (or any nested data), but its template and
    font names."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in skip:
                yield from strings(v, skip)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings(v, skip)


def assert_chinese(texts: Iterable[str], where: str) -> None:
    texts = [x for x in texts if x and x.strip()]
    left = {x: english(x) for x in texts if english(x)}
    assert not left, f"{where}: English left in zh-Hans: {list(left.items())[:5]}"


def figure_texts(fig) -> list[str]:
    from nnviz.figures.player import figure_dict
    return list(strings(figure_dict(fig)))


# ------------------------------------------------------------------------------ catalogue


def test_every_library_translation_is_chinese():
    """No msgstr of library.po is (still) English: each is written in Chinese."""
    from babel.messages.pofile import read_po

    for lang in ("zh-Hans", "zh-Hant"):
        with (i18n.LOCALES / lang / "library.po").open("rb") as fh:
            catalog = read_po(fh)
        for m in catalog:
            if not m.id:
                continue
            texts = list(m.string) if isinstance(m.string, tuple) else [m.string]
            for text in texts:
                assert not english(text), (lang, m.id, text)


def test_zh_hant_is_traditional_with_taiwan_terms():
    with language("zh-Hant"):
        assert t("activation signal") == "激活訊號"
        assert "參數" in t("parameters (log)")
        assert "批次大小" in t("batch size")
        assert t("Data set") == "資料集"
        assert "預設" in t("PyTorch default")
    # a network's activations are 激活 in Taiwan too, never OpenCC's 啟用 ("enable")
    text = (i18n.LOCALES / "zh-Hant" / "library.po").read_text(encoding="utf-8")
    assert "啟用" not in text and "引數" not in text and "函式" not in text


# -------------------------------------------------------------------------------- figures


def _hist(values, edges) -> stats.Histogram:
    return stats.histogram(np.asarray(values, dtype=np.float64), np.asarray(edges))


def _figures() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    edges = np.linspace(-1, 1, 21)
    hist = _hist(np.r_[rng.normal(0, 0.3, 500), 5.0, -5.0, np.nan, np.inf], edges)
    conv = rng.normal(0, 0.1, (20, 40, 3, 3))
    lin = rng.normal(0, 0.1, (12, 30))
    history = [HistoryRow(epoch=1, train_loss=1.0, val_loss=1.1, train_acc=0.5, val_acc=0.4),
               HistoryRow(epoch=2, train_loss=0.8, val_loss=0.9, train_acc=0.6, val_acc=0.5)]
    pct = np.sort(rng.normal(0, 1, (3, len(stats.PERCENTILES))), axis=1)
    profile = pd.DataFrame({"depth": [1, 2, 3], "layer": ["fc1", "fc2", "fc3"],
                            "weight_std": [0.1, 0.1, 0.1], "activation_std": [1.0, 0.0, 0.1],
                            "grad_std": [1e-3, 1e-4, 0.0], "norm_after": [False, True, False]})
    rows = [(0, 0.0, {}), (1, 1.0, {"vanishing": "warning", "dead_relu": "info"}),
            (2, 2.0, {"non_finite": "critical", "lr_too_high": "warning",
                      "not_learning": "warning"})]
    return {
        "weight_histogram": fw.weight_histogram(hist, theory_xy=(edges, np.ones_like(edges)),
                                                theory_point=0.5),
        "delta_histogram": fw.delta_histogram(hist),
        "conv_filter_grid": fw.conv_filter_grid(conv, 0.3, max_filters=8, max_channels=4),
        "conv_filter_grid_whole": fw.conv_filter_grid(conv[:2, :2], 0.3),
        "rgb_global": fw.rgb_filters(rng.normal(0, 1, (8, 3, 3, 3))),
        "rgb_per_filter": fw.rgb_filters(rng.normal(0, 1, (8, 3, 3, 3)), normalize="per_filter"),
        "neuron_grid": fw.neuron_grid(lin, 0.3),
        "spatial_grid": fw.spatial_grid(rng.normal(0, 1, 2 * 4 * 4), (2, 4, 4), 1.0,
                                        max_channels=1),
        "bias_bars": fw.bias_bars(np.array([0.1, np.nan, -0.2]), (-0.5, 0.5),
                                  theory_bounds=(-0.3, 0.3)),
        "ridgeline": fw.ridgeline(edges, rng.integers(0, 9, (4, 20)), ["a", "b", "c", "d"], 1),
        "percentile_bands": fw.percentile_bands([0, 1, 2], pct, 1),
        "training_loss": fc.training_curve(history, "loss", 1),
        "training_acc": fc.training_curve(history, "acc"),
        "training_empty": fc.training_curve([], "loss"),
        "compare": fc.compare_curves({"a": history, "b": history}, "val_loss"),
        "drift": fc.drift_curves([0, 1, 2], {"fc1.weight": [0, 1e-3, 1.0]}),
        "update_ratio": fc.update_ratio_curves([1, 2], {"fc1.weight": [1e-3, 2e-3]}),
        "activation_fractions": fc.activation_fractions(["a", "b"], [0.1, 0.2], [0.0, 0.5],
                                                        [0.1, None]),
        "activation_empty": fc.activation_fractions(["a"], [None], [None], [None]),
        "activation_std": fc.activation_std(["a", "b"], [0.0, 0.1], [1.0, 0.5]),
        "health_timeline": fh.health_timeline(rows, 1),
        "health_nothing": fh.health_timeline([(0, 0.0, {})]),
        "health_empty": fh.health_timeline([]),
        "signal_chart": fh.signal_chart(profile),
        "signal_empty": fh.signal_chart(profile.iloc[:0]),
    }


@pytest.mark.parametrize("name", list(_figures()))
def test_every_figure_builder_draws_chinese(name):
    with language("zh-Hans"):
        fig = _figures()[name]
        texts = figure_texts(fig)
    assert_chinese(texts, name)
    assert any(CJK.search(x) for x in texts), f"{name}: no Chinese at all"


def _tuning_frames() -> dict[str, Any]:
    labels = ["a", "b", "c"]
    history = pd.DataFrame([
        {"label": lab, "run_id": lab, "status": s, "epoch": e, "train_loss": 1.0 / e,
         "val_loss": 1.2 / e, "val_acc": 0.3 * e, "lr": 0.1, "seconds": 1.0}
        for lab, s in zip(labels, ["completed", "diverged", "completed"], strict=True)
        for e in (1, 2, 3)])
    summary = pd.DataFrame([
        {"label": lab, "run_id": lab, "status": s, "detail": d, "epochs_done": 3,
         "batch_size": b, "width": w, "depth": dep, "dropout": 0.0, "weight_decay": 0.0,
         "loss": "cross_entropy", "n_params": 10 * w, "n_classes": 3, "train_loss": tl,
         "val_loss": vl, "val_acc": 0.5, "best_val_loss": bv, "best_epoch": 2,
         "seconds_per_epoch": sp, "gap": vl - tl}
        for lab, s, d, b, w, dep, tl, vl, bv, sp in [
            ("a", "completed", "", 16, 8, 1, 0.5, 0.7, 0.6, 2.0),
            ("b", "diverged", "diverged at epoch 2, step 7 (non-finite loss)", 64, 32, 2,
             0.4, 1.2, 1.0986, 1.0),
            ("c", "completed", "stopped early at epoch 3: validation loss did not improve "
             "for 1 epochs", 256, 8, 2, 0.3, 0.9, 0.8, 0.5)]])
    layer_std = pd.DataFrame([{"label": lab, "run_id": lab, "layer": f"fc{d}", "depth": d,
                               "std": s, "output": d == 3}
                              for lab, f in (("a", 1.0), ("b", 0.1), ("c", 3.0))
                              for d, s in ((1, 1.0), (2, f), (3, f * f))])
    health = pd.DataFrame([{"label": lab, "run_id": lab, "layer": f"act{d}", "kind": k,
                            "depth": d, "measure": m, "fraction": 0.2 * d, "epoch": 3}
                           for lab, k, m in (("relu", "relu", "dead"),
                                             ("tanh", "tanh", "saturated"))
                           for d in (1, 2)])
    loss_choice = pd.DataFrame([
        {"label": "ce", "run_id": "x", "status": "completed", "task": "classification",
         "loss": "cross_entropy", "metric": "validation accuracy", "value": 0.8},
        {"label": "focal", "run_id": "y", "status": "completed", "task": "classification",
         "loss": "focal", "metric": "validation accuracy", "value": 0.85},
        {"label": "MSE", "run_id": "z", "status": "completed", "task": "regression",
         "loss": "mse", "metric": "distance to the true (w, b)", "value": 0.5},
        {"label": "MAE", "run_id": "w", "status": "completed", "task": "regression",
         "loss": "mae", "metric": "distance to the true (w, b)", "value": 0.1}])
    marks = {"best_epoch": 2, "stop_epoch": 3, "patience": 1, "epochs": 4}
    return {"history": history, "summary": summary, "layer_std": layer_std, "health": health,
            "loss_choice": loss_choice, "marks": marks, "switch_epoch": 2}


@pytest.mark.parametrize("step", sorted(tuning.STEPS))
def test_every_tuning_step_figure_and_finding_is_chinese(step):
    frames = _tuning_frames()
    with language("zh-Hans"):
        figs = ft.step_figures(step, frames)
        findings = tuning.step_findings(step, frames)
        labels = [label for label, _ in tuning.step_configs(step, tuning.tuning_base(), "tiny")]
        spec = tuning.STEPS[step]
        texts = [t(spec.title), t(spec.explanation), t(spec.setup), t(spec.look_for)]
        if spec.correction:
            texts.append(t(spec.correction))
    for fig in figs:
        assert_chinese(figure_texts(fig), f"step {step} figure")
    assert findings and all(CJK.search(x) for x in findings), findings
    assert_chinese(findings, f"step {step} findings")
    assert_chinese(labels, f"step {step} run labels")
    assert_chinese(texts, f"step {step} text")
    assert all(CJK.search(x) for x in texts)


def test_tuning_extras_are_chinese():
    cfg = RunConfig.from_dict({"epochs": 6, "lr": 0.1, "scheduler": "step"})
    lr = pd.DataFrame({"lr": [1e-4, 1e-3, 1e-2], "loss": [1.0, 0.8, 5.0],
                       "smoothed": [1.0, 0.9, 3.0]})
    with language("zh-Hans"):
        figs = [ft.scheduler_figure(tframes.scheduler_preview(cfg)),
                ft.lr_find_figure(lr, suggested_lr=1e-3, stop_lr=1e-2),
                ft.lr_find_figure(lr.iloc[:0])]
        classes = [t(row["class"]) + " " + t(row["parameter"]) for row in tuning.PARAM_CLASSES]
        progress = tuning.SweepProgress(total=3, finished=1, fraction=0.5,
                                        states={"done": 1, "running": 1, "queued": 1},
                                        all_finished=False).text
        empty = tuning.step_findings(1, {**_tuning_frames(), "summary": pd.DataFrame()})
    for fig in figs:
        assert_chinese(figure_texts(fig), "tuning extra figure")
    assert_chinese([*classes, progress, *empty], "tuning tables")


# -------------------------------------------------------------------- lessons and config


def test_every_lesson_text_is_chinese():
    with language("zh-Hans"):
        texts = [t(x) for p in PRESETS.values() for x in (p.label, p.lesson, p.look) if x]
    assert_chinese(texts, "lessons")
    assert all(CJK.search(x) for x in texts)


def test_every_option_registry_entry_and_caption_is_chinese():
    with language("zh-Hans"):
        texts = [t(x) for o in options().values() for x in (o.help, o.label)]
        texts += [o.accepts() for o in options().values()]
        for registry in (MODELS, INITIALIZERS, BIAS_INITS, DATASETS):
            for spec in registry.values():
                texts += [t(spec.label), t(spec.description)]
                texts += [t(spec.expects)] if hasattr(spec, "expects") else []
        texts += list(CAPTIONS.values())
    assert_chinese(texts, "options, registries and captions")


@pytest.mark.parametrize("bad", [
    {"epochs": 0}, {"model": "resnet"}, {"lr": "fast"}, {"colour": 1}, {"name": "x" * 99},
    {"model": "cnn", "depth": 9}, {"model": "simple_net", "dataset": "shapes32"},
    {"dataset": "mnist", "data_dir": ""}, {"dataset": "mnist", "data_dir": "/no/such/dir"},
])
def test_errors_a_student_sees_are_chinese(bad, tmp_path):
    from nnviz.engine.data import load_dataset

    with language("zh-Hans"):
        with pytest.raises(NnvizError) as err:
            cfg = RunConfig.from_dict({"n_samples": 200, **bad})
            if cfg.dataset == "mnist":
                load_dataset(cfg)
            else:
                train(cfg, RunStore(tmp_path))
    assert CJK.search(str(err.value)), str(err.value)
    assert_chinese([str(err.value)], "error")


# ---------------------------------------------------------------------- real small runs


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("i18n_runs"))
    cfg = RunConfig(model="simple_cnn", dataset="shapes32", n_samples=200, epochs=1,
                    batch_size=64, probe_size=16, seed=1)
    return store.load(train(cfg, store).run_id)


def test_the_epoch_players_texts_are_chinese(cnn_run):
    run = cnn_run
    with language("zh-Hans"):
        texts = []
        for layer in views.layer_params(run):
            trs = {p: views.param_track([run], p) for p in views.layer_params(run)[layer]}
            payload = ev.player_payload(run, layer, trs, more=True, timeline=[(0, 0.0, {})])
            for block in payload["blocks"]:
                texts += [block.get("html", ""), *block.get("htmls", [])]
                for cell in block.get("row", []):
                    texts += cell["caption"] + cell.get("notes", [])
                    texts += list(strings(cell["chart"]))
            texts += payload["labels"]
    texts = [re.sub(r"<[^>]+>", " ", x) for x in texts]  # the HTML tags are not text
    assert_chinese(texts, "player")
    assert sum(bool(CJK.search(x)) for x in texts) > 20


def test_table_headers_are_shown_in_chinese_and_the_data_keeps_its_keys(cnn_run):
    with language("zh-Hans"):
        tables = [views.stats_table(cnn_run, 1), views.grad_table(cnn_run, 1),
                  views.activation_table(cnn_run, 1)]
        shown = [views.translated_columns(df) for df in tables]
    assert "grad norm ‖g‖" in tables[1].columns  # the app reads these columns by name
    for df in shown:
        assert_chinese([str(c) for c in df.columns], "table headers")
        assert all(CJK.search(str(c)) or c in ("NaN", "Inf") for c in df.columns), df.columns


@pytest.mark.parametrize("data", [b"not a zip", "text"])
def test_an_import_refusal_is_chinese(data, tmp_path):
    from nnviz.store.archive import import_run

    with language("zh-Hans"), pytest.raises(NnvizError) as err:
        import_run(RunStore(tmp_path), data)
    assert CJK.search(str(err.value)) and not english(str(err.value)), str(err.value)


def test_a_checkpoint_refusal_is_chinese(tmp_path):
    from nnviz.store.checkpoints import load_weights

    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x01\x02")
    for path in (bad, tmp_path / "missing.pt", tmp_path):
        with language("zh-Hans"), pytest.raises(NnvizError) as err:
            load_weights(path)
        assert CJK.search(str(err.value)) and not english(str(err.value)), str(err.value)


# ------------------------------------------------------------------------------ diagnostics

MOONS = dict(model="mlp", dataset="moons", depth=2, width=32)
# A few of tests/test_diagnostics_runs.py's textbook runs, at tiny sizes, that between them
# raise most of the flags (and every cause text of the ones they raise).
DIAG_CASES = {
    "zeros": dict(MOONS, activation="tanh", init="zeros", bias_init="zeros", optimizer="sgd",
                  lr=0.1),
    "zeros_relu": dict(MOONS, depth=3, init="zeros", optimizer="sgd", lr=0.1),
    "large_mlp": dict(model="mlp", dataset="spiral", depth=10, width=64, init="too_large",
                      optimizer="sgd", lr=0.01, epochs=2),
    "sigmoid_small": dict(model="mlp", dataset="spiral", depth=12, width=32,
                          activation="sigmoid", init="too_small", optimizer="sgd", lr=0.1),
    "xavier_relu": dict(model="mlp", dataset="spiral", depth=30, width=32, init="xavier_normal",
                        optimizer="sgd", lr=0.01, epochs=2),
    "tanh_large": dict(model="mlp", dataset="spiral", depth=5, width=64, activation="tanh",
                       init="too_large", optimizer="sgd", lr=0.01),
    "kaiming_lr_huge": dict(model="mlp", dataset="spiral", depth=4, width=32,
                            init="kaiming_normal", optimizer="sgd", lr=10.0),
    "sgd_lr_tiny": dict(MOONS, init="kaiming_normal", optimizer="sgd", lr=1e-5),
    "memorise": dict(model="mlp", dataset="moons", n_samples=100, val_fraction=0.5,
                     noise=0.35, depth=3, width=128, optimizer="adam", lr=0.01, epochs=25),
    "stuck_at_chance": dict(model="mlp", dataset="spiral", depth=3, width=32, optimizer="sgd",
                            momentum=0.0, lr=0.003, epochs=4),
}


@pytest.fixture(scope="module")
def diag_runs(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("i18n_diag"))
    ids = {}
    for name, over in DIAG_CASES.items():
        cfg = RunConfig.from_dict({"n_samples": 300, "epochs": 3, "probe_size": 32, **over,
                                   "name": name})
        ids[name] = train(cfg, store).run_id
    return store, ids


def _flag_texts(flag) -> list[str]:
    out = [flag.title, flag.explanation, flag.fix, flag.guide_title]
    for k, v in flag.evidence.items():
        out += [str(k), str(v)]
    return out


def test_diagnostics_of_real_runs_are_chinese(diag_runs):
    store, ids = diag_runs
    codes = set()
    for name, run_id in ids.items():
        run = store.load(run_id)
        with language("zh-Hans"):  # titles are said when read, the rest when diagnosed
            flags = diagnostics.diagnose(run)
            texts = [_flag_texts(f) for f in flags]
            at = [_flag_texts(f) for i in range(run.n_snapshots)
                  for f in diagnostics.flags_at(run, i)]
            report = diagnostics.format_report(run, flags)
        english_flags = diagnostics.diagnose(run)  # the cache holds no language
        assert [f.code for f in flags] == [f.code for f in english_flags]
        for f, e, said in zip(flags, english_flags, texts, strict=True):
            assert_chinese(said, f"{name}: {f.code}")
            assert all(CJK.search(x) for x in said[:4]), said[:4]
            assert not CJK.search(e.explanation + e.fix + e.title + "".join(e.evidence))
        for said in at:
            assert_chinese(said, f"{name}: a flag at a snapshot")
        assert_chinese(report.splitlines(), f"{name}: report")
        codes |= {f.code for f in flags}
    # the runs above raise most of the flags, so most of the texts were checked
    assert len(codes) >= 9, codes


def test_nnviz_diagnose_lang_prints_chinese_and_json_stays_english(diag_runs, capsys):
    from nnviz.cli.main import main as cli_main

    store, ids = diag_runs
    args = ["--runs-dir", str(store.root), "diagnose", ids["sigmoid_small"]]
    assert cli_main([*args, "--lang", "zh-Hans"]) == 0
    text = capsys.readouterr().out
    assert CJK.search(text) and "信号或梯度消失" in text
    assert_chinese(text.splitlines(), "nnviz diagnose --lang zh-Hans")
    assert cli_main([*args, "--lang", "zh-Hant"]) == 0
    assert "訊號或梯度消失" in capsys.readouterr().out
    assert cli_main(args) == 0
    assert not CJK.search(capsys.readouterr().out)  # English unless asked
    assert cli_main([*args, "--lang", "zh-Hans", "--json"]) == 0
    payload = capsys.readouterr().out
    assert not CJK.search(payload) and '"vanishing"' in payload


def test_nnviz_diagnose_rejects_an_unknown_language(diag_runs, capsys):
    from nnviz.cli.main import main as cli_main

    store, ids = diag_runs
    with pytest.raises(SystemExit) as exc:
        cli_main(["--runs-dir", str(store.root), "diagnose", ids["zeros"], "--lang", "xx"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--lang" in err and "'xx'" in err and "zh-Hans" in err
