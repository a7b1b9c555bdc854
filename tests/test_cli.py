"""Every command answers --help with an example; the top level lists them all."""

import pytest

from charctl.cli import build_parser, main


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in subcommands():
        assert name in out


@pytest.mark.parametrize("name", subcommands())
def test_every_command_has_help_with_an_example(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "example" in capsys.readouterr().out.lower()


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("name", subcommands())
def test_every_option_says_what_it_does(name):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    for option in action.choices[name]._actions:
        assert option.help, f"charctl {name} {'/'.join(option.option_strings) or option.dest}: no help text"


def test_motions_says_what_the_loop_modes_mean(capsys):
    assert main(["motions"]) == 0
    out = capsys.readouterr().out
    assert "loop wrap: the clip repeats" in out
    assert "loop none: after its end the clip holds its last frame" in out
