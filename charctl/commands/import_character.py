"""`charctl import-character RECIPE`: build characters/<name>.{urdf,yaml} from a DeepMimic character file."""

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-character",
        help="import a DeepMimic character file as a charctl character (URDF + YAML)",
        description="Build characters/<name>.urdf and .yaml from a recipe naming a DeepMimic character file, "
        "its PD controller file, the bodies allowed to touch the ground and optional segment splits.",
        epilog="example: charctl import-character configs/characters/dog.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", type=Path, help="recipe YAML (see configs/characters/)")
    parser.add_argument("--out-dir", type=Path, default=None, help="where to write (default: characters/)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from charctl.character import recipe as dm
    from charctl.character.model import load_character
    from charctl.util.errors import CharctlError
    from charctl.util.fileio import atomic_write_text
    from charctl.util.paths import CHARACTERS_DIR

    recipe_path: Path = args.recipe
    if not recipe_path.exists():
        raise CharctlError(f"{recipe_path}: recipe file not found")
    recipe, splits = dm.read_recipe(recipe_path)
    base = recipe_path.parent
    joints = dm.read_deepmimic_character(base / recipe.source, base / recipe.controller)
    source_order = [j.name for j in joints if j.kind != "root"]
    joints = dm.apply_splits(joints, splits, recipe_path)
    name = recipe.name
    out_dir = args.out_dir or CHARACTERS_DIR
    urdf = dm.write_urdf(name, joints)
    spec = dm.character_yaml(name, joints, source_order, recipe.ground_contact_bodies, recipe.notes)
    atomic_write_text(out_dir / f"{name}.urdf", urdf)
    atomic_write_text(out_dir / f"{name}.yaml", spec)
    character = load_character(str(out_dir / f"{name}.yaml"))
    print(f"wrote {out_dir / name}.urdf/.yaml: {character.num_joints} bodies, {character.num_dof} DoF, "
          f"{character.total_mass:.2f} kg, action size {character.action_size}")
    return 0
