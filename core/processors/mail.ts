import Handlebars from 'handlebars';
import { z } from 'zod';
import { getSite, type BulkMailTemplate, type SiteConfig } from '../../config/index.ts';
import { BadRequestError, errorMessage } from '../shared/errors.ts';
import { echoed, own } from '../shared/own.ts';
import { jobLogger } from '../shared/log.ts';
import {
  isThrottling,
  MailThrottledError,
  SesMailSender,
  sendWithRetry,
  type MailSender,
  type RetryOptions,
} from '../usage/ses-sender.ts';
import {
  RecordError,
  type PreviewContext,
  type RowContext,
  type RowInput,
  type RowOutput,
  type RowPreview,
  type RowProcessor,
} from './types.ts';

/**
 * The `mail` processor: one mail per CSV row through SES v2, at most once per row.
 *
 * - The sender and the templates are the job's site's own (`bulkMail` in config/sites.ts): the site comes from
 *   the job (ctx.site) and nothing else, so one site can never send with another's sender or templates.
 * - The template (the job's `template` option, default the site's first) has `{{column}}` placeholders
 *   (Handlebars, strict): the subject and the text part as written, the HTML part HTML-escaped. A placeholder
 *   naming no column of the file fails the row (MAIL_TEMPLATE_FIELD); the recipient comes from the template's
 *   `to` column (default `email`). Both are declared in `needs`: the split refuses a file whose header lacks one
 *   (PROCESSOR_FIELDS_MISSING) before any record runs.
 * - Every mail takes from the stage's SES limiter (`mail.ratePerSecond`, shared by every worker of every job);
 *   SES throttling is retried with backoff (core/usage/ses-sender.ts); side effects are claimed per row
 *   (core/effects/claims.ts).
 * - The result is `mail/<n>.json` per row sent: `{"to","subject","messageId","sentAt"}`. Refused rows go to
 *   errors.csv: MAIL_INVALID_ADDRESS (not sent), MAIL_REFUSED (SES answered with a permanent error),
 *   MAIL_THROTTLED (SES throttled every attempt: not sent), MAIL_TEMPLATE_FIELD, MAIL_TEMPLATE_INVALID (the
 *   template cannot be compiled or filled: not sent), MAIL_ADDRESS_TOO_LONG (longer than RFC 5321 allows: not
 *   sent); a row whose send got no answer is IN_DOUBT.
 * - The subject is a header: line breaks and other control characters of a cell become a space in it.
 */

/** The header naming the row a bulk mail is for: its idempotency key (`<site>#<token>#<n>`). */
export const RECORD_HEADER = 'X-Rowfleet-Record';

const address = z.email();

interface Compiled {
  readonly to: string;
  readonly subject: HandlebarsTemplateDelegate;
  readonly text: HandlebarsTemplateDelegate;
  readonly html: HandlebarsTemplateDelegate;
}

/** The template compiled; its syntax checked now (Handlebars compiles on first use otherwise). */
function compile(t: BulkMailTemplate): Compiled {
  // Strict: a placeholder without a column throws instead of rendering empty. Only the HTML part is escaped.
  const plain = { strict: true, noEscape: true } as const;
  for (const part of [t.subject, t.text, t.html]) Handlebars.parse(part);
  return {
    to: t.to,
    subject: Handlebars.compile(t.subject, plain),
    text: Handlebars.compile(t.text, plain),
    html: Handlebars.compile(t.html, { strict: true }),
  };
}

/** The site's template of a job: named in its options, else the site's first. */
export function templateOf(
  site: SiteConfig,
  options: Readonly<Record<string, string>>,
): { name: string; template: BulkMailTemplate } {
  const bulk = site.bulkMail;
  if (!bulk)
    throw new BadRequestError(
      'MAIL_NOT_CONFIGURED',
      `Site ${site.id} has no bulk mail (bulkMail in config).`,
    );
  const names = Object.keys(bulk.templates);
  const name = own(options, 'template') ?? names[0]!;
  // Own templates only: `constructor` or `toString` is no template of any site.
  const template = own(bulk.templates, name);
  if (!template)
    throw new BadRequestError(
      'UNKNOWN_TEMPLATE',
      `Unknown mail template "${name}" for site ${site.id}. Templates: ${names.join(', ')}.`,
    );
  return { name, template };
}

/** Blocks whose body reads another context than the row (`{{#each list}}…{{/each}}`): their paths are not columns. */
const CONTEXT_BLOCKS = new Set(['each', 'with']);

/**
 * The columns a template reads from the row: the first segment of every path of the row's context (placeholders
 * and helpers' arguments; `{{[a b]}}` is the column `a b`), outside blocks that change the context, and the
 * recipient column. A part that does not parse names none (the job check refuses it).
 */
export function templateColumns(t: BulkMailTemplate): string[] {
  const columns = new Set<string>();
  const visit = (node: unknown, rowContext: boolean): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, rowContext);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const n = node as {
      type?: string;
      original?: string;
      data?: boolean;
      depth?: number;
      parts?: string[];
      path?: { original?: string; type?: string };
      params?: unknown[];
      hash?: { pairs?: { value: unknown }[] };
      program?: unknown;
      inverse?: unknown;
      body?: unknown;
    };
    if (n.type === 'PathExpression') {
      const first = n.parts?.[0];
      if (rowContext && !n.data && n.depth === 0 && first !== undefined) columns.add(first);
      return;
    }
    const helper = n.params && n.params.length > 0 ? n.path?.original : undefined;
    // A mustache with arguments calls a helper: its path is the helper's name, its arguments are read.
    if ((n.type === 'MustacheStatement' || n.type === 'SubExpression') && !helper) visit(n.path, rowContext);
    visit(n.params ?? [], rowContext);
    for (const p of n.hash?.pairs ?? []) visit(p.value, rowContext);
    if (n.type === 'BlockStatement') {
      const inner = rowContext && !CONTEXT_BLOCKS.has(n.path?.original ?? '');
      visit(n.program, inner);
      visit(n.inverse, inner);
      return;
    }
    visit(n.body, rowContext);
  };
  for (const part of [t.subject, t.text, t.html]) {
    try {
      visit(Handlebars.parse(part), true);
    } catch {
      // Not compiled: checkJob refuses the job (MAIL_TEMPLATE_INVALID).
    }
  }
  return [...columns, t.to];
}

/** A template that cannot be compiled: the request is refused (checkJob), a record fails (nothing was sent). */
function invalidTemplate(name: string, err: unknown): string {
  return `template "${name}" cannot be compiled: ${errorMessage(err).split('\n')[0]}`;
}

/** RFC 5321's limits, in octets: local part 64, domain 255, the whole address 254 (a path of 256 with `<>`). */
export function addressTooLong(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const local = Buffer.byteLength(address.slice(0, at), 'utf8');
  const domain = Buffer.byteLength(address.slice(at + 1), 'utf8');
  const whole = Buffer.byteLength(address, 'utf8');
  if (local > 64) return `its local part is ${local} octets (at most 64)`;
  if (domain > 255) return `its domain is ${domain} octets (at most 255)`;
  if (whole > 254) return `it is ${whole} octets (at most 254)`;
  return undefined;
}

/** A header's text: every run of line breaks and other control characters is one space (no header injection). */
export function headerText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}

/** A row as template data: header name → value (own keys only; a "__proto__" column stays a plain key). */
function rowData(header: readonly string[], fields: readonly string[]): Record<string, string> {
  const data: Record<string, string> = {};
  header.forEach((h, i) => Object.defineProperty(data, h, { value: fields[i] ?? '', enumerable: true }));
  return data;
}

/** SES answered with an error that is not throttling: it refused the mail (nothing was sent). */
function isRefusal(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500 && !isThrottling(err);
}

export interface MailProcessorOptions {
  /** @default SES v2 (core/usage/ses-sender.ts), made on first use */
  readonly sender?: () => MailSender;
  /** @default the configured site (config/sites.ts) */
  readonly site?: (id: string) => SiteConfig;
  /** Backoff of throttled sends. @default ses-sender's (5 attempts, 500 ms doubling, 8 s at most) */
  readonly retry?: Omit<RetryOptions, 'signal'>;
}

export function createMailProcessor(o: MailProcessorOptions = {}): RowProcessor {
  let sender: MailSender | undefined;
  const senderOf = () => (sender ??= o.sender?.() ?? new SesMailSender());
  const siteOf = o.site ?? ((id: string) => getSite(id));
  /** Compiled templates, by site and template name (the site is part of the key). */
  const compiled = new Map<string, Compiled>();

  /**
   * The mail a record would be sent: the site's template filled from the row, the recipient checked. The one path
   * of `process` (which then sends it) and `preview` (which shows it); a refusal is the record's RecordError.
   */
  const render = (row: RowInput, ctx: PreviewContext) => {
    const site = siteOf(ctx.site);
    // Nothing is sent before the template is known and compiled: a failure here is the record's own code.
    let chosen: ReturnType<typeof templateOf>;
    try {
      chosen = templateOf(site, ctx.options);
    } catch (err) {
      const code = err instanceof BadRequestError ? err.code : 'MAIL_TEMPLATE_INVALID';
      throw new RecordError(code, `${errorMessage(err)} Not sent.`);
    }
    const { name, template } = chosen;
    const key = `${site.id}/${name}`;
    let t = compiled.get(key);
    if (!t) {
      try {
        t = compile(template);
      } catch (err) {
        throw new RecordError('MAIL_TEMPLATE_INVALID', `${invalidTemplate(name, err)}; not sent`);
      }
      compiled.set(key, t);
    }
    const data = rowData(ctx.header, row.fields);
    const to = ctx.header.includes(t.to) ? data[t.to]!.trim() : undefined;
    if (to === undefined)
      throw new RecordError('MAIL_TEMPLATE_FIELD', `the file has no "${t.to}" column for the recipient`);
    if (!address.safeParse(to).success)
      throw new RecordError('MAIL_INVALID_ADDRESS', `"${to}" is not a valid e-mail address; not sent`);
    const tooLong = addressTooLong(to);
    if (tooLong)
      throw new RecordError(
        'MAIL_ADDRESS_TOO_LONG',
        `"${echoed(to)}" is longer than RFC 5321 allows: ${tooLong}; not sent`,
      );
    try {
      return {
        from: site.bulkMail!.from,
        to,
        subject: headerText(t.subject(data)),
        text: t.text(data),
        html: t.html(data),
      };
    } catch (err) {
      const field = /^"(.+)" not defined/.exec(errorMessage(err))?.[1];
      throw field
        ? new RecordError(
            'MAIL_TEMPLATE_FIELD',
            `template "${name}" names {{${field}}}, which is no column of the file; not sent`,
          )
        : new RecordError(
            'MAIL_TEMPLATE_INVALID',
            `template "${name}" cannot be filled: ${errorMessage(err)}; not sent`,
          );
    }
  };

  return {
    name: 'mail',
    description:
      "mail/<n>.json: one mail per row through SES, from the site's template (at most once per row)",
    concurrency: 50,
    costMs: 100,
    rateLimit: { key: 'ses', perSecond: (stage) => stage.mail.ratePerSecond },
    sideEffects: true,
    takesTemplate: true,
    timeoutMs: 30_000,
    checkJob(job) {
      const { name, template } = templateOf(siteOf(job.site), job.options);
      try {
        compile(template);
      } catch (err) {
        throw new BadRequestError('MAIL_TEMPLATE_INVALID', `${invalidTemplate(name, err)}.`);
      }
    },
    needs(job) {
      let chosen: ReturnType<typeof templateOf>;
      try {
        chosen = templateOf(siteOf(job.site), job.options);
      } catch {
        return { columns: [] }; // no bulk mail, an unknown template: checkJob refuses the job
      }
      return { columns: templateColumns(chosen.template) };
    },
    async process(row: RowInput, ctx: RowContext): Promise<RowOutput[]> {
      const { from, to, subject, text, html } = render(row, ctx);
      const mail = {
        from,
        to: [to],
        bcc: [],
        subject,
        text,
        html,
        tags: { site: ctx.site, job: ctx.token },
        headers: { [RECORD_HEADER]: ctx.idempotencyKey },
      };
      let messageId: string;
      try {
        ({ messageId } = await sendWithRetry(senderOf(), mail, jobLogger(ctx.site, ctx.token), {
          ...o.retry,
          signal: ctx.signal,
        }));
      } catch (err) {
        if (err instanceof MailThrottledError)
          throw new RecordError('MAIL_THROTTLED', `${err.message}`, { cause: err });
        if (isRefusal(err))
          throw new RecordError(
            'MAIL_REFUSED',
            `SES refused the mail: ${(err as Error).name}: ${errorMessage(err)}`,
            {
              cause: err,
            },
          );
        throw err; // no answer (network, timeout, stop) or a server error: the mail may have gone out
      }
      const result = { to, subject, messageId, sentAt: new Date().toISOString() };
      return [{ name: `mail/${row.n}.json`, data: JSON.stringify(result) }];
    },
    preview(row: RowInput, ctx: PreviewContext): RowPreview {
      return { kind: 'mail', ...render(row, ctx) };
    },
  };
}

/** The built-in `mail` processor: SES v2 through the stage's endpoint, the configured sites. */
export const mailProcessor = createMailProcessor();
