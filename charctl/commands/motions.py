"""`charctl motions`: list characters and their clips."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "motions", help="list characters and clips (frames, duration, loop)",
        description="List the characters in characters/ and the clips in motions/. Loop: 'wrap' clips repeat, "
        "each pass starting where the last ended, moved on and turned by one cycle, so an episode can run past the "
        "clip's length; 'none' clips play once and hold their last frame.",
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
    print("loop wrap: the clip repeats, each cycle starting where the last one ended (moved on by its travel and "
          "turned by its heading change); loop none: after its end the clip holds its last frame. "
          "'charctl retarget --loop cycle' cuts one cycle from a take and blends its ends to make a wrap clip.")
    return 0
