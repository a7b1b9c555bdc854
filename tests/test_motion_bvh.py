"""Bad BVH input gets a one-line error naming the file and the line."""

import pytest

from charctl.motion.bvh import read_bvh
from charctl.util.errors import CharctlError

GOOD = """HIERARCHY
ROOT hip
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT knee
  {
    OFFSET 0 -10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -10 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0083333
0 35 0 0 0 0 10 0 0
1 35 0 0 5 0 20 0 0
"""


def write(tmp_path, text):
    path = tmp_path / "clip.bvh"
    path.write_text(text)
    return path


def test_good_file_parses(tmp_path):
    bvh = read_bvh(write(tmp_path, GOOD))
    assert [j.name for j in bvh.joints] == ["hip", "knee"]
    assert bvh.joints[1].parent == 0 and bvh.joints[1].end_site.tolist() == [0, -10, 0]
    assert bvh.motion.shape == (2, 9) and bvh.frame_time == pytest.approx(0.0083333)


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.rsplit("\n", 2)[0] + "\n", r"clip.bvh:\d+: file ends after 1 of 2 frames \(truncated\)"),
    (lambda t: t.replace("1 35 0 0 5 0 20 0 0", "1 35 0 0 5 0 20 0"), r"clip.bvh:20: frame 1 has 8 values"),
    (lambda t: t.replace("1 35 0 0 5 0 20 0 0", "1 35 0 0 five 0 20 0 0"),
     r"clip.bvh:20: frame 1: 'five' is not a number"),
    (lambda t: t.replace("CHANNELS 3 Zrotation", "CHANNELS 3 Wrotation"),
     r"clip.bvh:9: joint 'knee': unknown channel 'Wrotation'"),
    (lambda t: t.replace("OFFSET 0 -10 0\n    CHANNELS", "OFFSET 0 x 0\n    CHANNELS"),
     r"clip.bvh:8: OFFSET: 'x' is not a number"),
    (lambda t: t.split("MOTION")[0], r"clip.bvh:\d+: no MOTION section"),
])
def test_bad_input_names_file_and_line(tmp_path, mutate, message):
    with pytest.raises(CharctlError, match=message) as info:
        read_bvh(write(tmp_path, mutate(GOOD)))
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CharctlError, match=r"nope.bvh: file not found"):
        read_bvh(tmp_path / "nope.bvh")
