"""The examples of python/README.md run: the ``python`` blocks in order, in one fresh
directory, and the ``pycon`` transcript as a doctest (its output must match). So does the
Python block of the repository's README.md."""

import doctest
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
ROOT_README = README.parent.parent / "README.md"


def blocks(language, readme=README):
    return re.findall(rf"```{language}\n(.*?)```", readme.read_text(), re.S)


def test_readme_examples_run(tmp_path, monkeypatch):
    examples = blocks("python")
    assert len(examples) >= 4
    monkeypatch.chdir(tmp_path)
    scope = {}
    for block in examples:
        exec(compile(block, str(README), "exec"), scope)


def test_readme_transcript_gives_its_output(tmp_path, monkeypatch):
    (transcript,) = blocks("pycon")
    monkeypatch.chdir(tmp_path)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(transcript, {}, "README transcript", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 10


def test_root_readme_python_example_runs(tmp_path, monkeypatch):
    (example,) = blocks("python", ROOT_README)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(ROOT_README), "exec"), {})
