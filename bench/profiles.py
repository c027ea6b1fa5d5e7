"""
Command lines shared by the benchmarks: a full and a quick profile of
sizes, each size overridable by its own option.
"""

import argparse


def profile_parser(description: str, full: dict, quick: dict, sizes, quick_help: str) -> argparse.ArgumentParser:
    """
    A parser with C{--quick} and one integer option per C{(name, text)} in
    C{sizes}; L{resolve} fills what was not given from the profile.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    for name, text in sizes:
        key = name.replace("-", "_")
        parser.add_argument(
            f"--{name}", type=int, help=f"{text} (default {full[key]}, with --quick {quick[key]})"
        )
    return parser


def resolve(options: argparse.Namespace, full: dict, quick: dict) -> argparse.Namespace:
    """Set every size not given on the command line from the chosen profile."""
    for name, default in (quick if options.quick else full).items():
        if getattr(options, name) is None:
            setattr(options, name, default)
    return options
