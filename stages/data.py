"""Datasets several experiments share: `python -m stages.data <stage>`.

mnist_download / mnist_prepare: the MNIST-family dataset named by mnist.dataset (batch_size,
autoencoder); cifar10_download / cifar10_prepare: CIFAR-10 (distill, colourize). A download
lands in data/raw/<dataset>/ (a persistent DVC output: a rerun re-verifies what is there and
fetches only what is missing or wrong); a prepare writes data/prepared/<dataset>.pt, uint8
tensors ready to move to the device whole.
"""
from __future__ import annotations

from stages.common import begin, main


def mnist_download() -> None:
    from pipeline.data import mnist
    from pipeline.data.download import mirror_setting

    st = begin("mnist_download", "mnist", mnist.MnistConfig, device=False)
    mirror = mirror_setting(st.cfg.source or st.settings.data.mirror)
    paths = mnist.fetch_all(st.cfg.dataset, st.cfg.raw_dir, mirror)
    total = sum(p.stat().st_size for p in paths.values())
    st.done(f"{st.cfg.dataset}: {len(paths)} files verified in {st.cfg.raw_dir} ({total / 1e6:.1f} MB)")


def mnist_prepare() -> None:
    from pipeline.data import mnist

    st = begin("mnist_prepare", "mnist", mnist.MnistConfig, device=False)
    cfg = st.cfg
    data = mnist.prepare({name: cfg.raw_dir / name for name in mnist.FILES})
    data.update(dataset=cfg.dataset, classes=mnist.CLASSES[cfg.dataset])
    st.save(data, cfg.prepared)
    st.done(f"{cfg.dataset}: train {tuple(data['train_x'].shape)}, test {tuple(data['test_x'].shape)} uint8 "
            f"-> {cfg.prepared}")


def cifar10_download() -> None:
    from pipeline.data import cifar10
    from pipeline.data.download import fetch, mirror_setting

    st = begin("cifar10_download", "cifar10", cifar10.Cifar10Config, device=False)
    path = fetch(cifar10.ARCHIVE, cifar10.RAW_DIR / cifar10.ARCHIVE.filename,
                 mirror_setting(st.cfg.source or st.settings.data.mirror))
    st.done(f"{path} verified ({path.stat().st_size / 1e6:.1f} MB)")


def cifar10_prepare() -> None:
    from pipeline.data import cifar10

    st = begin("cifar10_prepare", "cifar10", cifar10.Cifar10Config, device=False)
    data = cifar10.prepare(cifar10.RAW_DIR / cifar10.ARCHIVE.filename)
    st.save(data, cifar10.PREPARED)
    st.done(f"train {tuple(data['train_x'].shape)}, test {tuple(data['test_x'].shape)} uint8 -> {cifar10.PREPARED}")


if __name__ == "__main__":
    main(__doc__, {"mnist_download": mnist_download, "mnist_prepare": mnist_prepare,
                   "cifar10_download": cifar10_download, "cifar10_prepare": cifar10_prepare})
