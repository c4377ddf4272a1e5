"""parse_ps on crash ps text: crash 8.0.6 layout, the narrower crash 8/7 layout, RHEL6."""

from crash_ext.models.ps import PsEntry, parse_ps, parse_ps_line

# crash 8.0.6 (task.c: "%7ld %7ld %3s  %s %3s" after a 2-char active marker)
CRASH806 = """\
      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM
>       0       0   0  ffffffff8d613a00  RU   0.0        0        0  [swapper/0]
>       0       0   1  ffff9b5a4025c000  RU   0.0        0        0  [swapper/1]
        1       0   1  ffff9b5a40250000  IN   0.2     2460     1028  init
        2       0   0  ffff9b5a40251e00  IN   0.0        0        0  [kthreadd]
       57       2   0  ffff9b5a41b4bc00  ID   0.0        0        0  [kworker/0:1H-kblockd]
      101       1   1  ffff9b5a41e80000  UN   0.0        0        0  [lab_abba_a]
      130       1   0  ffff9b5a41e85a00  UN   0.4     2460      724  my prog 
-     140       1   3  ffff9b5a41e86000  RU   0.0        0        0  [swapper/3]
      141       1   ?  ffff9b5a41e87000  ZO   0.0        0        0  zombie
"""

# crash 8 help text / older crash 8 builds (narrower columns)
CRASH8_NARROW = """\
   PID    PPID  CPU       TASK        ST  %MEM     VSZ    RSS  COMM
>     0      0   0  ffffffff81a8d020  RU   0.0       0      0  [swapper]
  21273  21256   6  ffff81003ec15080  IN  46.3 1138276 484364  firefox
     >    10      2   1  ffff880212969710  IN   0.0      0      0   [migration/1]
"""

# RHEL6 crash, from the seed transcript
RHEL6 = """\
crash> ps 4723
   PID  PPID  CPU       TASK        ST  %MEM     VSZ    RSS  COMM
  4723  4087   2  ffff8807ef98aae0  UN   0.3  641736 137204  ruby
crash> ps 4724 5109
   PID  PPID  CPU       TASK        ST  %MEM     VSZ    RSS  COMM
  4724     1   6  ffff88076dfe2040  UN   0.3  468676 138156  ruby
  5109  5099  18  ffff8802d0e5a080  UN   0.0    4144    696  rm
"""


def test_crash806_rows():
    rows = parse_ps(CRASH806)
    assert [r.pid for r in rows] == [0, 0, 1, 2, 57, 101, 130, 140, 141]
    sw = rows[0]
    assert sw.active and sw.kthread and sw.comm == "swapper/0" and sw.cpu == 0
    assert sw.task == 0xffffffff8d613a00 and sw.state == "RU"
    init = rows[2]
    assert init == PsEntry(pid=1, ppid=0, cpu=1, task=0xffff9b5a40250000, state="IN",
                           mem_pct=0.2, vsz=2460, rss=1028, comm="init")
    assert rows[4].state == "ID" and rows[4].comm == "kworker/0:1H-kblockd"
    assert rows[5].state == "UN" and rows[5].kthread
    # a comm with blanks keeps them (crash prints comm verbatim)
    assert rows[6].comm == "my prog " and not rows[6].kthread
    off = rows[7]
    assert off.active and off.offline and off.pid == 140
    assert rows[8].cpu is None and rows[8].state == "ZO"


def test_narrow_and_indented_marker():
    rows = parse_ps(CRASH8_NARROW)
    assert [(r.pid, r.ppid, r.active) for r in rows] == [(0, 0, True), (21273, 21256, False),
                                                          (10, 2, True)]
    assert rows[1].mem_pct == 46.3 and rows[1].vsz == 1138276 and rows[1].rss == 484364
    assert rows[2].comm == "migration/1" and rows[2].kthread


def test_rhel6_seed():
    rows = parse_ps(RHEL6)
    assert [(r.pid, r.task, r.state, r.comm) for r in rows] == [
        (4723, 0xffff8807ef98aae0, "UN", "ruby"),
        (4724, 0xffff88076dfe2040, "UN", "ruby"),
        (5109, 0xffff8802d0e5a080, "UN", "rm"),
    ]
    assert rows[2].cpu == 18


def test_garbage_ignored():
    text = """\
ps: invalid task or pid value: 99999
      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM

PID: 1      TASK: ffff9b5a40250000  CPU: 1    COMMAND: "init"
  RU: 5
  IN: 259
    1  0  1  nothex  IN  0.0 0 0 x
        1       0   1  ffff9b5a40250000  IN   0.2     2460     1028  init
"""
    rows = parse_ps(text)
    assert len(rows) == 1 and rows[0].pid == 1
    assert parse_ps("") == []
    assert parse_ps_line("random words here") is None


def test_kstackp_rows_skipped():
    text = """\
      PID    PPID  CPU      KSTACKP      ST  %MEM      VSZ      RSS  COMM
        1       0   1  ffffa8d2c0013d58  IN   0.2     2460     1028  init
      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM
        1       0   1  ffff9b5a40250000  IN   0.2     2460     1028  init
"""
    rows = parse_ps(text)
    assert len(rows) == 1 and rows[0].task == 0xffff9b5a40250000


def test_lines_iterable():
    rows = parse_ps(CRASH806.splitlines())
    assert len(rows) == 9
