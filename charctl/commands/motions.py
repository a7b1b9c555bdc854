"""`charctl motions`: list characters and their clips."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "motions", help="list characters and clips (frames, duration, loop)",
        description="List the characters in characters/ and the clips in motions/.",
        epilog="example: charctl motions",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from charctl.character.model import available_characters, load_character
    from charctl.motion.clip import available_clips, load_clip

    clips = available_clips()
    for name in available_characters():
        character = load_character(name)
        print(f"{name}: {character.num_joints} bodies, {character.num_dof} DoF, {character.total_mass:.2f} kg, "
              f"action size {character.action_size}")
        for char_name, motion in clips:
            if char_name == name:
                clip = load_clip(name, motion)
                print(f"  {motion:<12} {clip.num_frames:4d} frames  {clip.duration:6.3f} s  "
                      f"loop {'wrap' if clip.loop else 'none'}")
    return 0
