// Copyright (c) cs3sync contributors. Apache-2.0.
/** The version of this front end; the server extension must answer the same one. */
export const VERSION = '0.1.0';
