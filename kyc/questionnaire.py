"""The appropriateness test: what a client knows of leveraged trading decides whether it suits them and caps the
leverage they may use. Questions and scoring are data, versioned, so a stored score always refers to its text."""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "2026-01"


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    options: tuple[tuple[str, str, int], ...]  # (value, label, points)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "experience",
        "How often have you traded leveraged products (CFDs, forex, futures) in the last three years?",
        (
            ("never", "Never", 0),
            ("few", "A few times", 1),
            ("monthly", "About monthly", 2),
            ("weekly", "Weekly or more", 3),
        ),
    ),
    Question(
        "margin_call",
        "Your account equity falls below the required margin. What can happen?",
        (
            ("nothing", "Nothing until I close my trades", 0),
            ("bonus", "The broker adds funds", 0),
            ("stop_out", "Positions may be closed automatically at a loss", 3),
        ),
    ),
    Question(
        "leverage_loss",
        "With 1:100 leverage, a 1% move against a position of 10,000 USD loses about:",
        (("1", "1 USD", 0), ("100", "100 USD", 3), ("10000", "10,000 USD", 0)),
    ),
    Question(
        "education",
        "Do you hold a qualification or have you worked in finance?",
        (("no", "No", 0), ("course", "I completed a trading course", 1), ("yes", "Yes", 2)),
    ),
    Question(
        "loss_capacity",
        "Could you afford to lose all the money you deposit?",
        (("no", "No", 0), ("some", "Part of it", 1), ("yes", "Yes", 2)),
    ),
)
MAX_SCORE = sum(max(points for _, _, points in q.options) for q in QUESTIONS)


@dataclass(frozen=True)
class Outcome:
    score: int
    leverage_cap: int
    suitable: bool
    message: str


def score_answers(answers: dict[str, str]) -> Outcome:
    """Score a complete set of answers. Raises ValueError naming the first unanswered or invalid question."""
    score = 0
    for question in QUESTIONS:
        value = answers.get(question.key)
        points = {v: p for v, _, p in question.options}.get(value)  # type: ignore[arg-type]
        if points is None:
            raise ValueError(f"Please answer: {question.text}")
        score += points
    if score >= 10:
        return Outcome(score, 500, True, "Leveraged trading appears appropriate for you.")
    if score >= 6:
        return Outcome(score, 100, True, "Leveraged trading may be appropriate; your leverage is limited to 1:100.")
    return Outcome(
        score,
        30,
        False,
        "Based on your answers, leveraged trading may not be appropriate for you. "
        "You may continue, with leverage limited to 1:30.",
    )
