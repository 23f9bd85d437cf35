/**
 * AWS on-demand list prices the check's cost estimate uses (core/intake/estimate.ts, POST /jobs?check=true), in
 * USD without tax, per region. Each figure names its source and the date of that source: "PL" is the AWS Price
 * List API (https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<Service>/current/...) with its usage type,
 * quoted from public repositories that cite it with a publication or query date; the official pricing pages fill
 * their tables with JavaScript, so no figure here was read from them. Figures marked "from memory" had no source
 * at hand: check them before relying on them. Free tiers are left out (an estimate of the run, not of a bill).
 * Collected 2026-12-07. docs/check.md lists them.
 */

/** One price: USD per `unit`, where it comes from and the date of that source. */
export interface Price {
  readonly usd: number;
  readonly unit: string;
  readonly source: string;
  readonly asOf: string;
}

/** The prices of one region, for the services a job uses. */
export interface RegionPrices {
  readonly fargate: {
    readonly x86: { readonly vcpuHour: Price; readonly gbHour: Price };
    readonly arm: { readonly vcpuHour: Price; readonly gbHour: Price };
  };
  readonly lambda: {
    readonly request: Price;
    /** Per GB-second of an arm64 function (the stack's functions are arm64: lib/rowfleet-function.ts). */
    readonly armGbSecond: Price;
  };
  readonly sqs: { readonly request: Price };
  readonly dynamodb: { readonly writeUnit: Price; readonly readUnit: Price };
  readonly s3: { readonly put: Price; readonly get: Price; readonly gbMonth: Price };
  readonly ses: { readonly message: Price };
}

const pl = (usageType: string) => `AWS Price List API, ${usageType}`;

export const PRICES: Readonly<Record<string, RegionPrices>> = {
  'ap-northeast-1': {
    fargate: {
      x86: {
        vcpuHour: {
          usd: 0.05056,
          unit: 'vCPU-hour',
          source: pl('AmazonECS APN1-Fargate-vCPU-Hours:perCPU'),
          asOf: '2026-07-07',
        },
        gbHour: {
          usd: 0.00553,
          unit: 'GB-hour',
          source: pl('AmazonECS APN1-Fargate-GB-Hours'),
          asOf: '2026-07-07',
        },
      },
      arm: {
        vcpuHour: {
          usd: 0.04045,
          unit: 'vCPU-hour',
          source: pl('AmazonECS APN1-Fargate-ARM-vCPU-Hours:perCPU'),
          asOf: '2026-07-07',
        },
        gbHour: {
          usd: 0.00442,
          unit: 'GB-hour',
          source: pl('AmazonECS APN1-Fargate-ARM-GB-Hours'),
          asOf: '2026-07-07',
        },
      },
    },
    lambda: {
      request: { usd: 0.0000002, unit: 'request', source: pl('AWSLambda APN1-Request'), asOf: '2026-09-23' },
      armGbSecond: {
        usd: 0.0000133334,
        unit: 'GB-second',
        source: `${pl('AWSLambda APN1-Lambda-GB-Second-ARM')} (quoted in a test fixture only; from memory agrees)`,
        asOf: '2026',
      },
    },
    sqs: {
      request: {
        usd: 0.0000004,
        unit: 'request (64 KB chunk)',
        source: pl('AWSQueueService APN1-Requests-Tier1'),
        asOf: '2026-09-23',
      },
    },
    dynamodb: {
      writeUnit: {
        usd: 0.000000715,
        unit: 'write request unit (on-demand)',
        source: pl('AmazonDynamoDB APN1-WriteRequestUnits'),
        asOf: '2026-09-23',
      },
      readUnit: {
        usd: 0.0000001425,
        unit: 'read request unit (on-demand)',
        source: pl('AmazonDynamoDB APN1-ReadRequestUnits'),
        asOf: '2026-09-23',
      },
    },
    s3: {
      put: {
        usd: 0.0000047,
        unit: 'PUT/COPY/POST/LIST request',
        source: pl('AmazonS3 APN1-Requests-Tier1'),
        asOf: '2026-09-18',
      },
      get: {
        usd: 0.00000037,
        unit: 'GET request',
        source: pl('AmazonS3 APN1-Requests-Tier2'),
        asOf: '2026-09-18',
      },
      gbMonth: {
        usd: 0.025,
        unit: 'GB-month (Standard)',
        source: pl('AmazonS3 APN1-TimedStorage-ByteHrs'),
        asOf: '2026-09-18',
      },
    },
    ses: {
      message: {
        usd: 0.0001,
        unit: 'mail (recipient)',
        source:
          'SES à-la-carte plan, $0.10 per 1,000 (the same in every region; from memory for Tokyo, us-east-1 from the AWS Price List 2026-07-22). Accounts new since 2026-07-21 pay $0.16 per 1,000 (Essentials plan)',
        asOf: '2026-07-22',
      },
    },
  },
  'us-east-1': {
    fargate: {
      x86: {
        vcpuHour: {
          usd: 0.04048,
          unit: 'vCPU-hour',
          source: 'https://www.wring.co/blog/aws-fargate-pricing-guide',
          asOf: '2026-03-10',
        },
        gbHour: {
          usd: 0.004445,
          unit: 'GB-hour',
          source: 'https://www.wring.co/blog/aws-fargate-pricing-guide',
          asOf: '2026-03-10',
        },
      },
      arm: {
        vcpuHour: {
          usd: 0.03238,
          unit: 'vCPU-hour',
          source: 'https://www.vantage.sh/blog/fargate-pricing (undated)',
          asOf: '2026',
        },
        gbHour: {
          usd: 0.00356,
          unit: 'GB-hour',
          source: 'https://www.vantage.sh/blog/fargate-pricing (undated)',
          asOf: '2026',
        },
      },
    },
    lambda: {
      request: {
        usd: 0.0000002,
        unit: 'request',
        source: 'https://aws.amazon.com/lambda/pricing/',
        asOf: '2026-05-05',
      },
      armGbSecond: {
        usd: 0.0000133334,
        unit: 'GB-second',
        source: 'https://cloudchipr.com/blog/aws-lambda-pricing',
        asOf: '2024',
      },
    },
    sqs: {
      request: {
        usd: 0.0000004,
        unit: 'request (64 KB chunk)',
        source: 'https://cloudburn.io/blog/amazon-sqs-pricing',
        asOf: '2026-03-14',
      },
    },
    dynamodb: {
      writeUnit: {
        usd: 0.000000625,
        unit: 'write request unit (on-demand)',
        source: 'https://airbyte.com/data-engineering-resources/dynamodb-pricing',
        asOf: '2025-07-21',
      },
      readUnit: {
        usd: 0.000000125,
        unit: 'read request unit (on-demand)',
        source: 'https://airbyte.com/data-engineering-resources/dynamodb-pricing',
        asOf: '2025-07-21',
      },
    },
    s3: {
      put: { usd: 0.000005, unit: 'PUT/COPY/POST/LIST request', source: 'from memory', asOf: '2026' },
      get: { usd: 0.0000004, unit: 'GET request', source: 'from memory', asOf: '2026' },
      gbMonth: {
        usd: 0.023,
        unit: 'GB-month (Standard)',
        source: 'a public repository comment citing the AWS Price List; from memory agrees',
        asOf: '2026-07-27',
      },
    },
    ses: {
      message: {
        usd: 0.0001,
        unit: 'mail (recipient)',
        source:
          'AWS Price List AmazonSES us-east-1, à-la-carte plan (accounts new since 2026-07-21: $0.16 per 1,000, Essentials)',
        asOf: '2026-07-22',
      },
    },
  },
};

/** The region whose prices an estimate uses when the stage's region has none here. */
export const DEFAULT_PRICE_REGION = 'ap-northeast-1';

/** The prices of `region`, or of {@link DEFAULT_PRICE_REGION} when there are none for it; with the region used. */
export function pricesFor(region: string): { readonly region: string; readonly prices: RegionPrices } {
  const own = Object.hasOwn(PRICES, region) ? PRICES[region] : undefined;
  return own
    ? { region, prices: own }
    : { region: DEFAULT_PRICE_REGION, prices: PRICES[DEFAULT_PRICE_REGION]! };
}

/** Every figure of a region's prices (for "as of" and the docs). */
export function priceFigures(p: RegionPrices): Price[] {
  const out: Price[] = [];
  const visit = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    if ('usd' in v && 'asOf' in v) out.push(v as Price);
    else for (const x of Object.values(v)) visit(x);
  };
  visit(p);
  return out;
}

/** The month of a region's newest dated figure (YYYY-MM): how current its table is. */
export function pricesAsOf(p: RegionPrices): string {
  return priceFigures(p)
    .map((f) => f.asOf)
    .filter((d) => /^\d{4}-\d{2}/.test(d))
    .map((d) => d.slice(0, 7))
    .sort()
    .at(-1)!;
}
