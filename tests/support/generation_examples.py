"""One realistic answer per task type from a generation provider (a model through Amazon Bedrock),
all written for the same prompt, EXAMPLE_PROMPT: the quiz, the documentation, the animated lesson's
timeline and the video's script a model is asked for, as the pydantic documents it must return.

They are what the README shows as the shape of a Bedrock result and what the cost benchmark
(tests/perf/test_generation_cost.py) counts tokens on, so each passes the checks of the request an
engine builds for it (tests/unit/generation/test_examples.py). Everything they state comes from the
prompt, as the instructions for a prompt that is a text demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from taskapi.generation.base import GenerationRequest
from taskapi.generation.documents import (
    DocumentationDocument,
    DocumentationSection,
    KeyTerm,
    LessonScene,
    LessonTimeline,
    QuizDocument,
    QuizQuestion,
    ScriptSegment,
    VideoScript,
)
from taskapi.generation.instructions import documentation_request, lesson_request, quiz_request, script_request

EXAMPLE_PROMPT = (
    "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two sides. "
    "The hypotenuse is the side opposite the right angle, and it is always the longest side. "
    "The theorem is named after Pythagoras of Samos, a Greek philosopher of the sixth century BC, although "
    "Babylonian tablets show the relation was known more than a thousand years earlier. "
    "A triangle with sides 3, 4 and 5 is a right triangle, because 9 plus 16 equals 25. "
    "Builders used such triples to lay out square corners."
)
LANGUAGE = "English"
QUIZ_DIFFICULTY = "easy"
QUIZ_QUESTIONS = 5
QUIZ_TYPES = ["multiple_choice", "true_false"]
VIDEO_SEGMENTS = 5

# The prompt's sentences, quoted word for word by the quiz's source_sentence.
_SQUARES = "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two sides."
_LONGEST = "The hypotenuse is the side opposite the right angle, and it is always the longest side."
_HISTORY = (
    "The theorem is named after Pythagoras of Samos, a Greek philosopher of the sixth century BC, although "
    "Babylonian tablets show the relation was known more than a thousand years earlier."
)
_THREE_FOUR_FIVE = "A triangle with sides 3, 4 and 5 is a right triangle, because 9 plus 16 equals 25."
_BUILDERS = "Builders used such triples to lay out square corners."

EXAMPLE_QUIZ = QuizDocument(
    title="The Pythagorean theorem",
    questions=[
        QuizQuestion(
            type="multiple_choice",
            question="In a right triangle, what does the square of the hypotenuse equal?",
            options=[
                "The product of the other two sides",
                "The sum of the squares of the other two sides",
                "Twice the square of the shortest side",
                "The difference of the squares of the other two sides",
            ],
            answer="The sum of the squares of the other two sides",
            explanation="This is the theorem itself: the square on the hypotenuse equals the squares on the "
            "other two sides added together.",
            source_sentence=_SQUARES,
        ),
        QuizQuestion(
            type="true_false",
            question="The hypotenuse is the shortest side of a right triangle.",
            answer=False,
            explanation="The hypotenuse, the side opposite the right angle, is always the longest side.",
            source_sentence=_LONGEST,
        ),
        QuizQuestion(
            type="multiple_choice",
            question="Why is a triangle with sides 3, 4 and 5 a right triangle?",
            options=[
                "Because 3 plus 4 plus 5 equals 12",
                "Because 3 times 4 equals 12",
                "Because 9 plus 16 equals 25",
                "Because 5 is the largest of the three numbers",
            ],
            answer="Because 9 plus 16 equals 25",
            explanation="The squares of the two shorter sides, 9 and 16, add up to 25, the square of the "
            "longest side, so the theorem's relation holds.",
            source_sentence=_THREE_FOUR_FIVE,
        ),
        QuizQuestion(
            type="true_false",
            question="Babylonian tablets show that the relation was known more than a thousand years before "
            "Pythagoras.",
            answer=True,
            explanation="The theorem carries the name of Pythagoras of Samos, but Babylonian tablets show the "
            "relation was known more than a thousand years earlier.",
            source_sentence=_HISTORY,
        ),
        QuizQuestion(
            type="multiple_choice",
            question="What did builders use triples such as 3, 4 and 5 for?",
            options=[
                "To measure the height of towers",
                "To lay out square corners",
                "To divide a field into equal parts",
                "To draw perfect circles",
            ],
            answer="To lay out square corners",
            explanation="A triangle with sides 3, 4 and 5 has a right angle, so builders could use such triples "
            "to make square corners.",
            source_sentence=_BUILDERS,
        ),
    ],
)

EXAMPLE_DOCUMENTATION = DocumentationDocument(
    title="The Pythagorean theorem",
    overview="This document explains the relation between the sides of a right triangle known as the "
    "Pythagorean theorem. It says which side is the hypotenuse, checks the relation on the triangle with "
    "sides 3, 4 and 5, and closes with where the theorem's name comes from and how builders used it.",
    sections=[
        DocumentationSection(
            heading="The theorem",
            markdown=(
                "In a **right triangle**, the square of the hypotenuse equals the sum of the squares of the "
                "other two sides. Calling the two shorter sides *a* and *b* and the hypotenuse *c*:\n\n"
                "```\na² + b² = c²\n```"
            ),
        ),
        DocumentationSection(
            heading="The hypotenuse",
            markdown=(
                "The **hypotenuse** is the side of a right triangle that:\n\n"
                "- lies opposite the right angle;\n"
                "- is always the longest of the three sides.\n\n"
                "The other two sides meet at the right angle."
            ),
        ),
        DocumentationSection(
            heading="Checking a triangle: sides 3, 4 and 5",
            markdown=(
                "A triangle with sides 3, 4 and 5 is a right triangle. Square each side:\n\n"
                "| side | square |\n| --- | --- |\n| 3 | 9 |\n| 4 | 16 |\n| 5 (the hypotenuse) | 25 |\n\n"
                "Because **9 + 16 = 25**, the squares of the two shorter sides add up to the square of the "
                "longest, exactly as the theorem says."
            ),
        ),
        DocumentationSection(
            heading="History and use",
            markdown=(
                "### The name\n\n"
                "The theorem is named after **Pythagoras of Samos**, a Greek philosopher of the sixth century BC. "
                "Babylonian tablets show the relation was known more than a thousand years earlier.\n\n"
                "### Square corners\n\n"
                "Builders used triples such as 3, 4 and 5 to lay out square corners: a triangle with those "
                "sides has a right angle."
            ),
        ),
    ],
    key_terms=[
        KeyTerm(term="Right triangle", definition="A triangle with one right angle."),
        KeyTerm(
            term="Hypotenuse",
            definition="The side opposite the right angle of a right triangle; always its longest side.",
        ),
        KeyTerm(
            term="Pythagorean theorem",
            definition="In a right triangle, the square of the hypotenuse equals the sum of the squares of "
            "the other two sides.",
        ),
        KeyTerm(
            term="Triple",
            definition="Three side lengths, such as 3, 4 and 5, that make a right triangle.",
        ),
    ],
)

EXAMPLE_LESSON = LessonTimeline(
    title="The Pythagorean theorem",
    scenes=[
        LessonScene(
            kind="title",
            title="The Pythagorean theorem",
            narration="Welcome. In this lesson we look at how the three sides of a right triangle are related, "
            "and at a rule that is named after Pythagoras.",
            on_screen_text="The Pythagorean theorem",
            visual="The title fades in over a right triangle drawn in chalk on a dark board; the right angle is "
            "marked with a small square.",
            animation="title-card",
        ),
        LessonScene(
            kind="explanation",
            title="The hypotenuse",
            narration="A right triangle has one right angle. The side opposite that angle is called the "
            "hypotenuse, and it is always the longest of the three sides.",
            on_screen_text="Hypotenuse: opposite the right angle",
            visual="The right angle pulses; then the side across from it lights up and its label, hypotenuse, "
            "slides in beside it.",
            animation="key-term-reveal",
            key_terms=["right triangle", "hypotenuse"],
        ),
        LessonScene(
            kind="explanation",
            title="Squares on the sides",
            narration="Here is the theorem. Draw a square on each side. The square on the hypotenuse equals the "
            "two squares on the other sides added together.",
            on_screen_text="a² + b² = c²",
            visual="A square grows outward from each side of the triangle; the two smaller squares slide over "
            "and fill the large square exactly.",
            animation="diagram-build",
            key_terms=["square", "hypotenuse"],
        ),
        LessonScene(
            kind="example",
            title="Sides 3, 4 and 5",
            narration="Take a triangle with sides 3, 4 and 5. Three squared is 9, four squared is 16, and 9 plus "
            "16 equals 25, which is five squared. So this triangle has a right angle.",
            on_screen_text="9 + 16 = 25",
            visual="A triangle with sides labelled 3, 4 and 5 on a grid; the squares of 9, 16 and 25 cells fill "
            "in one after the other, then the sum appears.",
            animation="diagram-build",
            key_terms=["3, 4 and 5"],
        ),
        LessonScene(
            kind="example",
            title="Square corners",
            narration="Builders used such triples to lay out square corners: a triangle with sides 3, 4 and 5 has "
            "a right angle, so its corner is square.",
            on_screen_text="3-4-5: a square corner",
            visual="Two builders stretch a knotted cord into a 3-4-5 triangle on the ground and mark the corner "
            "of a wall's foundation.",
            animation="narrated-illustration",
            key_terms=["triple"],
        ),
        LessonScene(
            kind="explanation",
            title="An old discovery",
            narration="The theorem is named after Pythagoras of Samos, a Greek philosopher of the sixth century "
            "BC. Yet Babylonian tablets show the relation was known more than a thousand years earlier.",
            on_screen_text="Pythagoras of Samos, 6th century BC",
            visual="A timeline scrolls from Babylonian clay tablets to a portrait bust of Pythagoras, with the "
            "thousand-year gap between them highlighted.",
            animation="narrated-illustration",
            key_terms=["Pythagoras of Samos", "Babylonian tablets"],
        ),
        LessonScene(
            kind="recap",
            title="Recap",
            narration="To sum up: the hypotenuse is the longest side, opposite the right angle; its square equals "
            "the sum of the squares of the other two sides; and 3, 4 and 5 is a right triangle.",
            on_screen_text="What we learned",
            visual="The three points appear one by one as a list beside the 3-4-5 triangle.",
            animation="summary-list",
            key_terms=["hypotenuse", "Pythagorean theorem"],
        ),
    ],
)

EXAMPLE_SCRIPT = VideoScript(
    title="The Pythagorean theorem",
    segments=[
        ScriptSegment(
            title="A rule about right triangles",
            narration="Every right triangle hides a simple rule about its sides. In this short video we see what "
            "the rule says, check it on a real triangle, and find out where it comes from and how builders "
            "put it to work.",
            key_terms=["right triangle"],
            image_prompt="A large right triangle drawn on a clean chalkboard, the right angle marked with a small "
            "square, soft classroom light.",
        ),
        ScriptSegment(
            title="The hypotenuse",
            narration="The side opposite the right angle is called the hypotenuse. It is always the longest of the "
            "three sides, and it is the side the rule is about.",
            key_terms=["hypotenuse", "right angle"],
            image_prompt="A right triangle with its longest side glowing, the two shorter sides meeting at a "
            "highlighted corner.",
        ),
        ScriptSegment(
            title="Squares on the sides",
            narration="Here is the rule. In a right triangle, the square of the hypotenuse equals the sum of the "
            "squares of the other two sides. Build a square on each side, and the two smaller squares "
            "together cover exactly the biggest one.",
            key_terms=["square", "sum of the squares"],
            image_prompt="Three coloured squares built outward on the sides of a right triangle, the two smaller "
            "ones made of tiles that could fill the larger one.",
        ),
        ScriptSegment(
            title="Checking 3, 4 and 5",
            narration="Take a triangle with sides 3, 4 and 5. The squares are 9, 16 and 25, and 9 plus 16 equals "
            "25. So this is a right triangle, and builders used such triples to lay out square corners.",
            key_terms=["3, 4 and 5", "triples", "square corners"],
            image_prompt="Builders stretching a knotted rope into a triangle on a building site to mark the corner "
            "of a foundation.",
        ),
        ScriptSegment(
            title="Named after Pythagoras",
            narration="The theorem is named after Pythagoras of Samos, a Greek philosopher of the sixth century "
            "BC, although Babylonian tablets show the relation was known more than a thousand years earlier. "
            "Remember: the square on the longest side equals the other two squares together.",
            key_terms=["Pythagoras of Samos", "Babylonian tablets"],
            image_prompt="An ancient clay tablet beside a marble bust of a bearded Greek philosopher, warm museum "
            "lighting.",
        ),
    ],
)


@dataclass(frozen=True)
class Example:
    """A task type's example: the request its engine builds for EXAMPLE_PROMPT, and the answer."""

    task_type: str
    request: GenerationRequest[Any]
    document: BaseModel


def examples() -> list[Example]:
    """The four examples, as the engines ask for them (the video's: its script only)."""
    return [
        Example(
            "quiz",
            quiz_request(EXAMPLE_PROMPT, LANGUAGE, QUIZ_DIFFICULTY, QUIZ_QUESTIONS, QUIZ_TYPES),
            EXAMPLE_QUIZ,
        ),
        Example("documentation", documentation_request(EXAMPLE_PROMPT, LANGUAGE), EXAMPLE_DOCUMENTATION),
        Example("animated_lesson", lesson_request(EXAMPLE_PROMPT, LANGUAGE), EXAMPLE_LESSON),
        Example("video", script_request(EXAMPLE_PROMPT, LANGUAGE, VIDEO_SEGMENTS, None, None), EXAMPLE_SCRIPT),
    ]
