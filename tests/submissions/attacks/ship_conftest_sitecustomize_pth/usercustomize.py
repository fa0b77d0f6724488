"""ATTACK PAYLOAD: would run at interpreter start-up if this folder were the user site."""
try:
    with open("/tmp/autograder_attack_marker_usercustomize", "w") as handle:
        handle.write("usercustomize ran\n")
except Exception:
    pass
