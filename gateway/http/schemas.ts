/** Shared TypeBox schemas: error body, list envelope, pagination. */
import { Type, type TSchema } from 'typebox';
import { MAX_AMOUNT } from '../money.js';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable error code (FEEGATE_ERR_...)' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorBody', description: 'Every error has this shape' },
);

export const Amount = Type.Integer({ minimum: 1, maximum: MAX_AMOUNT, description: 'Integer VND, 1 to 10^15' });
export const Uuid = Type.String({ format: 'uuid' });

const listParams = {
  limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: '1 to 100, default 20' })),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
};

/** Query string of a list route: limit, cursor and the route's own filters; nothing else. */
export function listQuery<P extends Record<string, TSchema>>(filters: P = {} as P) {
  return Type.Object({ ...listParams, ...filters }, { additionalProperties: false });
}

export const ListQuery = listQuery();

export function ListOf<T extends TSchema>(item: T) {
  return Type.Object({
    object: Type.Literal('list'),
    data: Type.Array(item),
    has_more: Type.Boolean(),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  });
}

export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
};
