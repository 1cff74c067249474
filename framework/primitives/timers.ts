/** The longest delay `setTimeout` honours: a longer one fires after 1 ms (Node warns and clamps). */
export const MAX_TIMER_MS = 2_147_483_647;
