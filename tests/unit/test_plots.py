"""Plots say what they show: colour bar and title on heatmaps, the clipping threshold and clipped
share on the gradient-norm plot, like-for-like losses, no constant curves."""
import pytest

from nmt import plots

pytest.importorskip("matplotlib")


@pytest.fixture
def figures(monkeypatch):
    """Figures as they are saved, kept open for inspection: {file name: figure}."""
    import os
    saved = {}

    def keep(fig, path, written):
        fig.tight_layout()
        fig.savefig(path, dpi=30)
        saved[os.path.basename(path)] = fig
        written.append(path)
    monkeypatch.setattr(plots, "_save", keep)
    yield saved
    plots._plt().close("all")


def records(steps=60, clip=1.0, lr=lambda s: 1e-3, tf=lambda s: 1.0):
    out = []
    for s in range(1, steps + 1):
        norm = 0.5 if s % 3 else 2.0  # every third update above the threshold
        out.append({"kind": "train", "step": s, "loss": 4.0, "nll": 3.0, "grad_norm": norm, "lr": lr(s),
                    "tf_ratio": tf(s), "clipped": int(norm > clip)})
    out.append({"kind": "valid", "step": steps, "loss": 3.1, "bleu": 12.0})
    return out


def test_gradient_norm_plot_draws_the_threshold_and_the_clipped_share(tmp_path, figures):
    plots.learning_curves(records(), str(tmp_path), clip_norm=1.0)
    ax = figures["grad_norm.png"].axes[0]
    assert "33.3% of 60 updates clipped" in ax.get_title()
    flat = [line for line in ax.get_lines() if set(line.get_ydata()) == {1.0}]
    assert flat and "clip threshold 1" in flat[0].get_label()


def test_loss_plot_compares_like_with_like_and_constants_are_not_drawn(tmp_path, figures):
    written = plots.learning_curves(records(), str(tmp_path), clip_norm=0.0)
    train_line = figures["loss.png"].axes[0].get_lines()[0]
    assert set(train_line.get_ydata()) == {3.0}  # the nll, not the label-smoothed loss (4.0)
    assert "no label smoothing" in figures["loss.png"].axes[0].get_title()
    names = {p.rsplit("/", 1)[-1] for p in written}
    assert "lr.png" not in names and "teacher_forcing.png" not in names
    assert "clipped" not in figures["grad_norm.png"].axes[0].get_title()  # no threshold without clipping
    written = plots.learning_curves(records(lr=lambda s: 1e-3 / s, tf=lambda s: 1 - s / 100), str(tmp_path))
    assert {"lr.png", "teacher_forcing.png"} <= {p.rsplit("/", 1)[-1] for p in written}


def test_attention_heatmap_has_a_colour_bar_and_a_title(tmp_path, figures):
    weights = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    plots.attention_heatmap(weights, ["ein", "hund", "</s>"], ["a", "dog"], str(tmp_path / "att.png"),
                            title="line 3, score -1.25")
    fig = figures["att.png"]
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "attention weight"  # the colour bar
    assert fig.axes[0].get_title() == "line 3, score -1.25"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["ein", "hund", "</s>"]
    assert (tmp_path / "att.png").stat().st_size > 0


def test_grad_flow_plot_one_curve_per_record(tmp_path, figures):
    recs = [{"step": s, "encoder": [1.0, 0.5, 0.25, 0.0], "decoder": [1.0, 0.9]} for s in (0, 25, 50)]
    plots.grad_flow(recs, str(tmp_path / "gf.png"))
    enc, dec = figures["gf.png"].axes
    assert len(enc.get_lines()) == 3 and enc.get_yscale() == "log"
    assert list(enc.get_lines()[0].get_xdata()) == [0, 1, 2]  # zeros are not drawn on a log axis
