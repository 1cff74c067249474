/** htm bound to preact's h: JSX-like templates without a compiler. */
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export type View = ReturnType<typeof html> | null | string;
