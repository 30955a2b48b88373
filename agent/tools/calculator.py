"""`calculator`: arithmetic by walking a parsed expression tree; nothing is ever eval'd.

Only number literals, + - * / // % **, unary signs, parentheses, a few math functions
and constants are allowed. Exponents and results are bounded so `9**9**9` cannot hang
the process.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agent.tools.base import ToolContext, ToolError, ToolOutput

_MAX_EXPONENT = 1000
_MAX_MAGNITUDE = 1e300

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


class CalculatorError(ToolError):
    """The expression is not plain arithmetic, or its value is out of range."""


def _check(value: float) -> float:
    if isinstance(value, complex) or abs(value) > _MAX_MAGNITUDE:
        raise CalculatorError("result out of range")
    return value


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value) if isinstance(node.value, float) else int(node.value)  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} is larger than {_MAX_EXPONENT}")
        if (
            isinstance(node.op, ast.Pow)
            and abs(left) > 1
            and abs(right) * math.log10(abs(left)) > 300
        ):
            raise CalculatorError("result out of range")
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise CalculatorError("division by zero") from exc
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and len(node.args) <= 4
    ):
        try:
            return _check(_FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
        except (ValueError, OverflowError) as exc:
            raise CalculatorError(f"{node.func.id}: {exc}") from exc
    raise CalculatorError(
        f"unsupported syntax {type(node).__name__!s}: use numbers, + - * / // % **, "
        f"parentheses and {', '.join(sorted(_FUNCTIONS))}"
    )


def calculate(expression: str) -> float:
    """Evaluate plain arithmetic; raises CalculatorError for anything else."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from exc
    try:
        return _eval(tree)
    except OverflowError as exc:
        raise CalculatorError("result out of range") from exc


class CalculatorArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expression: str = Field(
        ..., min_length=1, max_length=200, description="Arithmetic, e.g. (1969 - 1492) / 2"
    )


class CalculatorTool:
    name: ClassVar[str] = "calculator"
    description: ClassVar[str] = "Evaluate an arithmetic expression exactly."
    args_model: ClassVar[type[BaseModel]] = CalculatorArgs

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolOutput:
        assert isinstance(args, CalculatorArgs)
        value = calculate(args.expression)
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        return ToolOutput(text=f"{args.expression} = {value}")
