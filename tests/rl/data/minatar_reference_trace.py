#!/usr/bin/env python3
"""Reference traces from MinAtar itself (pip install MinAtar==1.0.15 numpy), for checking rl/envs.

  full    the exact format of `moelab env trace` (diff the two outputs):
          python3 minatar_reference_trace.py full --game G --seed S --actions FILE [--sticky P] [--no-ramping]
  golden  writes tests/rl/data/golden_<game>.txt: a scripted policy's actions with reward, terminal flag
          and an FNV-1a 64 hash of each observation (bytes 0/1 over [y][x][c]); test_golden_traces reads it:
          python3 minatar_reference_trace.py golden --out-dir tests/rl/data
  actions writes the scripted policy's actions for one game (for comparing long runs with `full`).

The policies only choose actions (recorded in the files); nothing in C++ needs to reproduce them.
"""
import argparse
import os
import random
import sys

from minatar import Environment

GAMES = ["breakout", "asterix", "freeway", "seaquest", "space_invaders"]
# (seed, sticky_action_prob, difficulty_ramping, steps) of the golden segments, per game.
GOLDEN_SEGMENTS = [(7, 0.1, True, 3000), (123, 0.0, False, 1000)]


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def obs_bytes(env):
    return env.state().astype("uint8").tobytes()


def obs_string(env):
    return "".join("1" if b else "0" for b in obs_bytes(env))


MOVES = {0: (0, 0), 1: (-1, 0), 2: (0, -1), 3: (1, 0), 4: (0, 1), 5: (0, 0)}


class Policy:
    """Random play that repeats actions and, per game, leans towards long, eventful episodes (dodging,
    collecting, surfacing) so that the traces reach ramps, refills and the rarer rules."""

    def __init__(self, game, seed):
        self.game = game
        self.rng = random.Random(seed)
        self.action = 0

    def random_action(self, r):
        if r < 0.3:
            self.action = self.rng.randrange(6)
        return self.action

    def __call__(self, env):
        g = env.env
        r = self.rng.random()
        if r > (0.97 if self.game == "breakout" else 0.9):
            return self.random_action(self.rng.random())
        return getattr(self, self.game)(g, r)

    def breakout(self, g, r):  # meet the ball where it lands (ignoring bricks): rallies, refills, tunnelling
        x, y, dx, dy = g.ball_x, g.ball_y, (-1, 1, 1, -1)[g.ball_dir], (-1, -1, 1, 1)[g.ball_dir]
        for _ in range(40):
            if y == 8 and dy > 0:
                break
            if not 0 <= x + dx <= 9:
                dx = -dx
            if y + dy < 0:
                dy = 1
            x, y = x + dx, y + dy
        return 1 if x < g.pos else (3 if x > g.pos else 0)

    def freeway(self, g, r):
        return 2 if r < 0.7 else self.random_action(r)

    def asterix(self, g, r):
        def danger(x, y):
            for e in g.entities:
                if e is not None and not e[3] and e[1] == y and abs(e[0] - x) <= 1:
                    return True
            return False
        options = []
        for a in (0, 1, 2, 3, 4):
            dx, dy = MOVES[a]
            x, y = min(9, max(0, g.player_x + dx)), min(8, max(1, g.player_y + dy))
            if not danger(x, y):
                gold = any(e is not None and e[3] and e[1] == y for e in g.entities)
                options.append((gold, self.rng.random(), a))
        return max(options)[2] if options else self.random_action(r)

    def seaquest(self, g, r):
        if g.diver_count < 0 and r < 0.8:
            return 2 if g.sub_y > 0 else 4  # negative counts surface freely: ramp up to the crowded levels
        if (g.oxygen < 40 and g.diver_count > 0) or g.diver_count == 6:
            return 2  # surface to refill (and collect the 6-diver reward)
        if g.sub_y <= 1:
            return 4  # surfacing with no diver ends the episode

        def danger(x, y):
            for e in g.e_fish + g.e_subs + g.e_bullets:
                if e[1] == y and abs(e[0] - x) <= 1:
                    return True
            return False
        for e in g.e_fish + g.e_subs:
            ahead = (e[0] > g.sub_x) if g.sub_or else (e[0] < g.sub_x)
            if e[1] == g.sub_y and ahead and g.shot_timer == 0 and r < 0.7:
                return 5
        options = []
        for a in (0, 1, 2, 3, 4):
            dx, dy = MOVES[a]
            x, y = min(9, max(0, g.sub_x + dx)), min(8, max(1, g.sub_y + dy))
            if not danger(x, y):
                diver = min([abs(d[1] - y) + abs(d[0] - x) for d in g.divers] or [20])
                options.append((-diver, self.rng.random(), a))
        return max(options)[2] if options else self.random_action(r)

    def space_invaders(self, g, r):
        def threat(x):
            return g.e_bullet_map[6:10, x].any()
        if threat(g.pos):
            for a, x in ((1, g.pos - 1), (3, g.pos + 1)):
                if 0 <= x <= 9 and not threat(x):
                    return a
        columns = [x for x in range(10) if g.alien_map[:, x].any()]
        target = min(columns, key=lambda x: abs(x - g.pos)) if columns else g.pos
        step = (target > g.pos) - (target < g.pos)
        if step == 0 or r < 0.3 or threat(g.pos + step):
            return 5
        return 3 if step > 0 else 1


def run(game, seed, sticky, ramping, steps, policy_seed, emit):
    env = Environment(game, sticky_action_prob=sticky, difficulty_ramping=ramping)
    env.seed(seed)
    env.reset()
    policy = Policy(game, policy_seed)
    emit("reset", env, None, None, None)
    for _ in range(steps):
        a = policy(env)
        r, t = env.act(a)
        emit("step", env, a, int(r), int(t))
        if t:
            env.reset()
            emit("reset", env, None, None, None)


def write_golden(out_dir):
    for game in GAMES:
        path = os.path.join(out_dir, "golden_%s.txt" % game)
        with open(path, "w") as f:
            f.write("# MinAtar 1.0.15 reference: 'segment SEED STICKY RAMPING STEPS' then 'reset HASH' / "
                    "'step A R T HASH'; HASH = FNV-1a 64 of the observation bytes\n")
            for seed, sticky, ramping, steps in GOLDEN_SEGMENTS:
                f.write("segment %d %s %d %d\n" % (seed, repr(sticky), int(ramping), steps))

                def emit(kind, env, a, r, t):
                    h = "%016x" % fnv1a64(obs_bytes(env))
                    if kind == "reset":
                        f.write("reset %s\n" % h)
                    else:
                        f.write("step %d %d %d %s\n" % (a, r, t, h))

                run(game, seed, sticky, ramping, steps, seed * 1000 + 1, emit)
        print("wrote", path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["full", "golden", "actions"])
    p.add_argument("--game", choices=GAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--actions")
    p.add_argument("--sticky", type=float, default=0.1)
    p.add_argument("--no-ramping", action="store_true")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--policy-seed", type=int, default=1)
    p.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    args = p.parse_args()
    if args.mode == "golden":
        write_golden(args.out_dir)
        return
    if args.mode == "actions":
        env = Environment(args.game, sticky_action_prob=args.sticky, difficulty_ramping=not args.no_ramping)
        env.seed(args.seed)
        env.reset()
        policy = Policy(args.game, args.policy_seed)
        out = []
        for _ in range(args.steps):
            a = policy(env)
            out.append(a)
            _, t = env.act(a)
            if t:
                env.reset()
        print(" ".join(map(str, out)))
        return
    with open(args.actions) as f:
        actions = [int(tok) for tok in f.read().split()]
    env = Environment(args.game, sticky_action_prob=args.sticky, difficulty_ramping=not args.no_ramping)
    env.seed(args.seed)
    env.reset()
    out = sys.stdout
    out.write("reset %s\n" % obs_string(env))
    for a in actions:
        r, t = env.act(a)
        out.write("step %d %d %d %s\n" % (a, int(r), int(t), obs_string(env)))
        if t:
            env.reset()
            out.write("reset %s\n" % obs_string(env))


if __name__ == "__main__":
    main()
