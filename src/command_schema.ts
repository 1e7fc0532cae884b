/**
 * A state machine's commands declared with a schema: `validateWith(schema)`
 * makes the `validate` of a {@linkcode StateMachine} from a zod schema (or
 * any schema with zod's `safeParse`), so that the command type, the check
 * and the 422 message all come from one declaration.
 *
 * @module
 */

import { RejectedError } from "./errors.ts";
import type { StateMachine } from "./state_machine.ts";

/** What a schema must offer: zod's `safeParse` (zod 3 and 4 both have it). */
export interface CommandSchema<T> {
  /** Checks a value; on success, `data` is the value as the schema reads it. */
  safeParse(value: unknown):
    | { readonly success: true; readonly data: T }
    | {
      readonly success: false;
      readonly error: {
        readonly issues: readonly {
          readonly path: readonly PropertyKey[];
          readonly message: string;
        }[];
      };
    };
}

/**
 * Makes a state machine's `validate` from a schema: a command the schema
 * refuses is a {@linkcode RejectedError} (HTTP 422) whose message names
 * each field that is wrong.
 *
 * @param schema The commands' schema.
 * @returns A `validate` function.
 *
 * @example A counter whose commands are declared with zod
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { z } from "zod";
 * import { validateWith } from "./command_schema.ts";
 *
 * const validate = validateWith(z.object({ op: z.literal("add"), n: z.number().int() }));
 * validate({ op: "add", n: 2 });
 * throws(() => validate({ op: "add", n: 1.5 }), /n: /);
 * ```
 */
export function validateWith<T>(
  schema: CommandSchema<T>,
): NonNullable<StateMachine<T>["validate"]> {
  return (command: unknown): T => {
    const parsed = schema.safeParse(command);
    if (parsed.success) return parsed.data;
    const problems = parsed.error.issues.map((issue) =>
      issue.path.length === 0
        ? issue.message
        : `${issue.path.map(String).join(".")}: ${issue.message}`
    );
    throw new RejectedError(`Invalid command: ${problems.join("; ")}`);
  };
}
