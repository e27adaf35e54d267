"""Sentences that read our numbers in words."""
from __future__ import annotations


def _pick(methods: dict, name: str, key: str) -> float:
    return methods[name].get(key, float("nan"))


def compare(summary: dict, factor: str, a: str, b: str, key: str = "holdout_psnr") -> str:
    """'a beats b by X dB' or 'a falls short of b by X dB' on one metric."""
    va, vb = _pick(summary[factor], a, key), _pick(summary[factor], b, key)
    unit, digits = (" dB", 2) if "psnr" in key else ("", 4)
    if va >= vb:
        return f"**{a}** beats **{b}** by {va - vb:.{digits}f}{unit} ({va:.3f} vs {vb:.3f})"
    return f"**{a}** falls short of **{b}** by {vb - va:.{digits}f}{unit} ({va:.3f} vs {vb:.3f})"


PHOTOGRAPHS = {"holdout_psnr": "the held-out photographs", "psnr": "the ten training photographs"}


def answer_4x(summary: dict, twice: str, direct: str, key: str = "holdout_psnr") -> str:
    """Is the 2× network applied twice better than a network trained for 4× directly? One sentence
    on the photographs `key` scores."""
    x4 = summary["x4"]
    t, d, bic = _pick(x4, f"{twice} x2 twice", key), _pick(x4, direct, key), _pick(x4, "bicubic", key)
    winner = f"applying `{twice}` twice" if t > d else f"`{direct}`, trained for 4× directly,"
    tie = " — within 0.2 dB, a near tie" if abs(t - d) < 0.2 else ""
    return (f"On {PHOTOGRAPHS.get(key, key)}: `{twice}` twice {t:.2f} dB, `{direct}` {d:.2f} dB, bicubic "
            f"{bic:.2f} dB; {winner} does better, by {abs(t - d):.2f} dB{tie}.")


def literal_verdict(summary: dict, key: str = "holdout_psnr") -> str:
    """What the literal network's score says about its flaw, read from the numbers."""
    lit, near = _pick(summary["x2"], "literal", key), _pick(summary["x2"], "nearest", key)
    if lit <= near + 0.2:
        return (f"the literal network ({lit:.2f} dB) is no better than copying each low-resolution pixel "
                f"({near:.2f} dB), as its flaw predicts")
    return (f"the literal network ({lit:.2f} dB) does a little better than copying pixels ({near:.2f} dB) by "
            "cleaning each block's colour, but it still paints each 2x2 block in one colour")
