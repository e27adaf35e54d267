"""distill — knowledge distillation from ResNet-50 to MobileNetV2 on CIFAR-10:
`python -m stages.distill <stage>`.

weights: torchvision's ImageNet ResNet-50 file; features: the frozen backbone's features of
augmented views of every training image and of every other image and its mirror; teacher: (a) its
new linear layer; logits: (a)'s logits for every stored view; grid <alpha> <tau>: one short run of
(b)'s α × τ grid; student: (b) with the grid's pair; scratch: (c) the same student without a
teacher; finetune: (d) the whole ResNet-50; logits_d: (d)'s logits for every stored view;
student_d: (e), (b)'s recipe taught by (d); report.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.distill.recipe import DistillConfig
from stages.common import begin, load_tensors, main

RAW = Path("data/raw/resnet50")
WEIGHTS_MARKER = RAW / "weights.json"
FEATURES, LOGITS = Path("data/features/distill/backbone.pt"), Path("data/features/distill/teacher_logits.pt")
LOGITS_D = Path("data/features/distill/finetune_logits.pt")
MODELS, METRICS = Path("models/distill"), Path("metrics/distill")
PLOTS, FIGURES = Path("plots/distill"), Path("figures/distill")
GRID_METRICS, GRID_PLOTS = METRICS / "grid", PLOTS / "grid"


def weights() -> None:
    """The weights file distill.teacher.weights names, fetched and checked like data (nothing
    when distill.teacher.pretrained is false); weights.json records what the teacher is to use."""
    from pipeline.core.errors import DownloadError
    from pipeline.core.files import file_digest
    from pipeline.data.download import fetch, mirror_setting
    from pipeline.distill.models import weights_remote

    st = begin("resnet50_weights", "distill", DistillConfig, device=False)
    wanted = st.cfg.teacher
    if not wanted.pretrained:
        RAW.mkdir(parents=True, exist_ok=True)
        st.write_json({"weights": None, "pretrained": False}, WEIGHTS_MARKER)
        st.done("distill.teacher.pretrained is false: no weights fetched; the teacher starts from random weights")
        return
    remote = weights_remote(wanted.weights)
    try:
        path = fetch(remote, RAW / remote.filename, mirror_setting(st.settings.data.mirror))
    except DownloadError as exc:
        raise DownloadError(f"{exc}; or run distill without them: "
                            "`dvc exp run -S distill.teacher.pretrained=false`") from None
    st.write_json({"weights": wanted.weights, "pretrained": True, "file": path.name, "url": remote.url,
                   "sha256": file_digest(path)}, WEIGHTS_MARKER)
    st.done(f"{wanted.weights} weights {path} verified ({path.stat().st_size / 1e6:.1f} MB)")


def _images(st) -> dict:
    from pipeline.data import cifar10
    from pipeline.distill.recipe import split_images

    return split_images(load_tensors(cifar10.PREPARED), st.cfg.data, st.seed, st.device)


def _teacher(st, frozen: bool = True):
    """The teacher with the backbone weights weights.json names (random ones when
    distill.teacher.pretrained is false)."""
    from pipeline.core.errors import DataError
    from pipeline.distill.models import teacher_net
    from stages.common import read_json

    t = st.cfg.teacher
    path = None
    if t.pretrained:
        marker = read_json(WEIGHTS_MARKER) if WEIGHTS_MARKER.exists() else {}
        if marker.get("weights") != t.weights:
            raise DataError(f"{RAW}: no {t.weights} weights recorded; run `dvc repro resnet50_weights` first "
                            "(or set distill.teacher.pretrained: false)")
        path = RAW / marker["file"]
    return teacher_net(t.resize, path, st.device, frozen)


def features() -> None:
    """The frozen backbone's 2048 features, computed once: (N, distill.head.views, 2048) for the
    training images (view 0 the image, the rest random crops and flips), (N, 2, 2048) for the
    validation and test images and their mirrors (1 without distill.head.flip_test); fp16."""
    import torch

    from pipeline.core.inference import predict
    from pipeline.distill.models import throughput
    from pipeline.distill.recipe import crop_flip, mirror_views, probe_views

    st = begin("distill_features", "distill", DistillConfig)
    cfg = st.cfg
    images = _images(st)
    net = _teacher(st).eval()
    out = {"resize": cfg.teacher.resize, "pretrained": cfg.teacher.pretrained,
           "weights": cfg.teacher.weights if cfg.teacher.pretrained else None, "classes": images["classes"]}
    for name, (x, y) in images["splits"].items():
        views = (probe_views(len(x), cfg.head, cfg.views, st.seed) if name == "train" else
                 mirror_views(len(x), cfg.head.flip_test)).to(x.device)
        out[name] = torch.stack([predict(net.features, crop_flip(x, views[:, k]), cfg.teacher.batch, st.amp).half().cpu()
                                 for k in range(views.shape[1])], 1)
        out[f"{name}_y"] = y.cpu()
    out["views"] = {"train": cfg.head.views, "flip_test": cfg.head.flip_test}
    test_x = images["splits"]["test"][0]
    out["images_per_second"] = throughput(net, test_x[:cfg.teacher.batch * 4], cfg.teacher.batch, st.amp)
    st.save(out, FEATURES)
    source = f"pretrained {cfg.teacher.weights}" if cfg.teacher.pretrained else "random weights"
    st.done(f"{', '.join(f'{k} {tuple(out[k].shape)}' for k in ('train', 'val', 'test'))} (images, views, "
            f"features) at "
            f"{cfg.teacher.resize}px ({source}), teacher {out['images_per_second']:,.0f} images/s on {st.device} "
            f"-> {FEATURES}")


def _record(st, tracker, name: str, metrics: dict, out, metrics_dir: Path = METRICS, plots_dir: Path = PLOTS) -> None:
    metrics.update(st.peak_memory())
    st.write_json(metrics, metrics_dir / f"{name}.json")
    st.write_csv(out.history, plots_dir / f"{name}.csv")
    tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    tracker.log_artifact(plots_dir / f"{name}.csv")


def _scores(st, name: str, model_fn, test, classes, batch: int, amp, title: str) -> dict:
    """Test metrics of one run, its per-class table, dvc confusion data and figure."""
    from pipeline.core.inference import predict
    from stages.scoring import score_predictions

    pred = predict(model_fn, test.inputs, batch, amp).argmax(1)
    return score_predictions(st, test.targets, pred, classes, per_class=PLOTS / f"{name}_per_class.csv",
                             table=PLOTS / f"{name}_confusion.csv", figure=FIGURES / f"confusion_{name}.png",
                             title=title)


def teacher() -> None:
    """(a) The new 10-class layer on the frozen backbone's standardised features (every training
    view a sample; validation and test by the mean of the image's and its mirror's logits). The
    teacher's saved head is the same map folded into one linear layer."""
    from pipeline.core.engine import parameter_count
    from pipeline.core.split import Split
    from pipeline.distill.models import FEATURES as WIDTH
    from pipeline.distill.models import ResNetTeacher
    from pipeline.distill.train import train_head
    from stages.common import fit_summary

    st = begin("distill_teacher", "distill", DistillConfig)
    cfg = st.cfg
    feats = load_tensors(FEATURES)
    splits = {k: Split(feats[k].to(st.device), feats[f"{k}_y"].to(st.device)) for k in ("train", "val", "test")}
    classes = feats["classes"]
    with st.tracked(st.params(head=cfg.head, teacher=cfg.teacher,
                              **{f"{k}_samples": len(v) for k, v in splits.items()})) as tracker:
        head, out = train_head(splits, cfg.head, seed=st.seed, classes=len(classes), on_epoch=tracker.log_epoch)
        head.eval()
        metrics = {**_scores(st, "teacher", head, splits["test"], classes, cfg.eval_batch, None,
                             "teacher (a), linear layer on frozen ResNet-50"),
                   **fit_summary(out), "parameters": parameter_count(ResNetTeacher(cfg.teacher.resize)),
                   "trained_parameters": parameter_count(head.linear), "train_views": feats["train"].shape[1],
                   "test_views": feats["test"].shape[1],
                   "inference_samples_per_second": round(feats["images_per_second"]), "resize": cfg.teacher.resize,
                   "pretrained": feats["pretrained"], "features": WIDTH}
        st.save({"head": {k: v.cpu() for k, v in head.folded().state_dict().items()}, "resize": feats["resize"],
                 "pretrained": feats["pretrained"], "weights": feats["weights"], "classes": classes},
                MODELS / "teacher.pt")
        _record(st, tracker, "teacher", metrics, out)
    st.done(f"test accuracy {metrics['test_accuracy']:.4f} with a linear layer on "
            f"{'pretrained' if feats['pretrained'] else 'RANDOM (not pretrained)'} ResNet-50 features, best epoch "
            f"{out.best_epoch}")


def _view_logits(st, net, target: Path, who: str) -> None:
    """`net`'s logits for every stored view of every training image (a student's soft targets),
    so no student step runs ResNet-50."""
    from pipeline.distill.models import view_logits
    from pipeline.distill.recipe import make_views

    x, y = _images(st)["splits"]["train"]
    views = make_views(len(x), st.cfg.views, st.seed)
    out = view_logits(net, x, views.to(st.device), st.cfg.teacher.batch, st.amp).cpu()
    agree = float((out[:, 0].argmax(1) == y.cpu()).float().mean())
    st.save({"logits": out, "views": views, "labels": y.cpu()}, target)
    st.done(f"{tuple(out.shape)} (images, views, classes); {who} is right on {100 * agree:.2f} % of the "
            f"training images -> {target}")


def logits() -> None:
    """(a)'s logits for every stored view: the soft targets of student (b)."""
    st = begin("distill_logits", "distill", DistillConfig)
    net = _teacher(st)
    net.head.load_state_dict(load_tensors(MODELS / "teacher.pt")["head"])
    _view_logits(st, net, LOGITS, "teacher (a)")


def logits_d() -> None:
    """The fine-tuned ResNet-50 (d)'s logits for every stored view: the soft targets of student (e)."""
    from pipeline.distill.models import teacher_net

    st = begin("distill_logits_d", "distill", DistillConfig)
    saved = load_tensors(MODELS / "finetune.pt")
    net = teacher_net(saved["resize"], None, st.device, frozen=True)     # on the device, channels_last on CUDA
    net.load_state_dict(saved["state_dict"])                            # copied into those tensors as they are
    _view_logits(st, net, LOGITS_D, "the fine-tuned teacher (d)")


def _student(st, name: str, alpha: float, tau: float, with_teacher: bool, epochs: int | None = None,
             title: str | None = None, extra: dict | None = None, logits_path: Path = LOGITS) -> dict:
    """Train one student; with a `title` (the full-length runs) score it on test, measure its
    inference speed and save it; without (a grid run) keep only its metrics and curves."""
    from pipeline.core.engine import parameter_count
    from pipeline.data import cifar10
    from pipeline.distill.models import throughput
    from pipeline.distill.recipe import make_views, student_data
    from pipeline.distill.train import train_student
    from stages.common import fit_summary

    cfg = st.cfg
    images = _images(st)
    views = make_views(len(images["splits"]["train"][0]), cfg.views, st.seed)
    data = student_data(images, views, load_tensors(logits_path) if with_teacher else None, str(logits_path))
    params = st.params(student=cfg.student, views=cfg.views, alpha=alpha, tau=tau,
                       epochs=epochs or cfg.student.train.epochs, teacher=with_teacher,
                       **{f"{k}_samples": len(data[k]) for k in ("train", "val", "test")})
    resume = st.resume((st.settings, cfg.student, cfg.views, cfg.data, alpha, tau, epochs),
                       (cifar10.PREPARED, logits_path) if with_teacher else (cifar10.PREPARED,))
    with st.tracked(params, resume) as tracker:
        model, out = train_student(data, data["views"], data["logits"], alpha, tau, cfg.student.train,
                                   width=cfg.student.width, dropout=cfg.student.dropout, seed=st.seed,
                                   classes=len(data["classes"]), epochs=epochs, amp_dtype=st.amp,
                                   on_epoch=tracker.log_epoch, resume_dir=resume)
        metrics = {**fit_summary(out), "alpha": alpha, "tau": tau, "val_samples": len(data["val"]), **(extra or {})}
        if title is None:
            metrics.update(test_accuracy_at_best=out.history[out.best_epoch - 1]["test_accuracy"])
            _record(st, tracker, name, metrics, out, GRID_METRICS, GRID_PLOTS)
            return metrics
        model.eval()
        test = data["test"]
        metrics.update(_scores(st, name, model, test, data["classes"], cfg.eval_batch, st.amp, title))
        metrics.update(parameters=parameter_count(model), inference_samples_per_second=round(
            throughput(model, test.inputs, cfg.eval_batch, st.amp)))
        st.save({"state_dict": out.best_state, "width": cfg.student.width, "dropout": cfg.student.dropout,
                 "alpha": alpha, "tau": tau, "classes": data["classes"]}, MODELS / f"{name}.pt")
        _record(st, tracker, name, metrics, out)
    return metrics


def grid(alpha: str, tau: str) -> None:
    """One short run of the α × τ grid (dvc.yaml matrix); only its validation accuracy is used.
    Its files are named by the values as dvc.yaml writes them: alpha<α>_tau<τ>."""
    from pipeline.core.errors import ParamError

    st = begin(f"distill_grid@{alpha}-{tau}", "distill", DistillConfig)
    g = st.cfg.grid
    try:
        a, t = float(alpha), float(tau)
    except ValueError:
        raise ParamError(f"distill grid: {alpha!r} {tau!r} are not two numbers (alpha tau)") from None
    if a not in g.alpha or t not in g.tau:
        raise ParamError(f"distill grid {a:g} {t:g}: not in distill.grid.alpha {list(g.alpha)} × "
                         f"distill.grid.tau {list(g.tau)}")
    m = _student(st, f"alpha{alpha}_tau{tau}", a, t, with_teacher=True, epochs=g.epochs)
    st.done(f"α={a:g} τ={t:g}: val accuracy {m['val_accuracy']:.4f} after {g.epochs} epochs")


def _grid_pair(st) -> tuple[float, float, list[dict]]:
    from pipeline.distill.recipe import best_pair
    from stages.common import read_json

    rows = [read_json(p) for p in sorted(GRID_METRICS.glob("*.json"))] if GRID_METRICS.is_dir() else []
    return best_pair(rows, st.cfg.grid, str(GRID_METRICS))


def student() -> None:
    """(b) The full-length student distilled from (a), with the grid's α and τ."""
    st = begin("distill_student", "distill", DistillConfig)
    alpha, tau, rows = _grid_pair(st)
    m = _student(st, "student", alpha, tau, with_teacher=True, title=f"student (b), distilled, α={alpha:g} τ={tau:g}",
                 extra={"grid_runs": len(rows), "teacher": "a"})
    st.done(f"α={alpha:g} τ={tau:g} (the grid's pick of {len(rows)} runs), test accuracy {m['test_accuracy']:.4f}, "
            f"best epoch {m['best_epoch']}")


def student_d() -> None:
    """(e) Student (b)'s recipe, views and α, τ, taught by the fine-tuned ResNet-50 (d) instead of (a)."""
    st = begin("distill_student_d", "distill", DistillConfig)
    alpha, tau, rows = _grid_pair(st)
    m = _student(st, "student_d", alpha, tau, with_teacher=True, logits_path=LOGITS_D,
                 title=f"student (e), distilled from (d), α={alpha:g} τ={tau:g}",
                 extra={"grid_runs": len(rows), "teacher": "d"})
    st.done(f"α={alpha:g} τ={tau:g} (the grid's pick), taught by (d): test accuracy {m['test_accuracy']:.4f}, "
            f"best epoch {m['best_epoch']}")


def scratch() -> None:
    """(c) The same student and schedule, no teacher: plain cross-entropy (α = 1)."""
    st = begin("distill_scratch", "distill", DistillConfig)
    m = _student(st, "scratch", 1.0, 1.0, with_teacher=False, title="student (c), no teacher")
    st.done(f"test accuracy {m['test_accuracy']:.4f}, best epoch {m['best_epoch']}")


def finetune() -> None:
    """(d) The whole ResNet-50 fine-tuned, its backbone at a lower learning rate."""
    import torch

    from pipeline.core.engine import parameter_count
    from pipeline.core.split import Split
    from pipeline.data import cifar10
    from pipeline.distill.models import throughput
    from pipeline.distill.train import train_finetune
    from stages.common import fit_summary

    st = begin("distill_finetune", "distill", DistillConfig)
    cfg = st.cfg
    images = _images(st)
    data = {k: Split(*v) for k, v in images["splits"].items()}
    net = _teacher(st, frozen=False)
    torch.manual_seed(st.seed)
    net.head.reset_parameters()
    params = st.params(finetune=cfg.finetune, teacher=cfg.teacher, views=cfg.views,
                       **{f"{k}_samples": len(v) for k, v in data.items()})
    resume = st.resume((st.settings, cfg.finetune, cfg.teacher, cfg.views, cfg.data), (cifar10.PREPARED,))
    with st.tracked(params, resume) as tracker:
        out = train_finetune(net, data, cfg.finetune.train, cfg.finetune.backbone_lr, cfg.views, seed=st.seed,
                             amp_dtype=st.amp, on_epoch=tracker.log_epoch, resume_dir=resume)
        net.eval()
        test = data["test"]
        metrics = {**_scores(st, "finetune", net, test, images["classes"], cfg.teacher.batch, st.amp,
                             "ResNet-50 fine-tuned (d)"),
                   **fit_summary(out), "parameters": parameter_count(net), "resize": cfg.teacher.resize,
                   "pretrained": cfg.teacher.pretrained,
                   "backbone_lr": cfg.finetune.train.lr * cfg.finetune.backbone_lr,
                   "inference_samples_per_second": round(throughput(net, test.inputs[:cfg.teacher.batch * 4],
                                                                    cfg.teacher.batch, st.amp))}
        st.save({"state_dict": out.best_state, "resize": cfg.teacher.resize, "classes": images["classes"]},
                MODELS / "finetune.pt")
        _record(st, tracker, "finetune", metrics, out)
    st.done(f"test accuracy {metrics['test_accuracy']:.4f}, best epoch {out.best_epoch}")


def report() -> None:
    """The grid as configured; a teacher without ImageNet weights is said on the first line."""
    from pipeline.core.params import load_params, parse
    from stages.common import read_json
    from stages.report import render_report

    cfg = parse(DistillConfig, load_params().get("distill", {}), key="distill")
    runs = [read_json(p) for p in (METRICS / "teacher.json", METRICS / "finetune.json") if p.exists()]
    preface = None if all(r.get("pretrained", True) for r in runs) else (
        "> **Made without pretrained weights** (`distill.teacher.pretrained: false`): the ResNet-50 teacher started "
        "from random weights, so (a), (b) and (d) show the pipeline working, not what ImageNet features give. Set "
        "it to true and run `dvc repro` for the real comparison.")
    render_report("distill", {"alpha": list(cfg.grid.alpha), "tau": list(cfg.grid.tau), "margin": cfg.grid.margin},
                  preface)


if __name__ == "__main__":
    main(__doc__, {"weights": weights, "features": features, "teacher": teacher, "logits": logits, "grid": grid,
                   "student": student, "scratch": scratch, "finetune": finetune, "logits_d": logits_d,
                   "student_d": student_d, "report": report},
         distributed=("finetune",))
