// Point + label graphics shared by the map's markers (cameras, replayed alerts): readable on a wall
// display, never hidden by the terrain or buildings.
const Cesium = window.Cesium;
let scale = 1;

/** Size factor of markers made from now on (the page's text scale). */
export function setMarkerScale(value) {
  scale = value;
}

/**
 * Point and label options for a Cesium Entity.
 * @param {{pixelSize: number, outline: string, labelOffset: number, maxDistance: number}} style
 */
export function markerGraphics({ pixelSize, outline, labelOffset, maxDistance }) {
  return {
    point: {
      pixelSize: pixelSize * scale,
      outlineColor: Cesium.Color.fromCssColorString(outline),
      outlineWidth: 2,
      disableDepthTestDistance: Number.POSITIVE_INFINITY,
    },
    label: {
      font: `600 ${Math.round(13 * scale)}px 'Noto Sans CJK SC', 'Noto Sans', sans-serif`,
      fillColor: Cesium.Color.WHITE,
      outlineColor: Cesium.Color.BLACK,
      outlineWidth: 3,
      style: Cesium.LabelStyle.FILL_AND_OUTLINE,
      pixelOffset: new Cesium.Cartesian2(0, -labelOffset * scale),
      verticalOrigin: Cesium.VerticalOrigin.BOTTOM,
      disableDepthTestDistance: Number.POSITIVE_INFINITY,
      distanceDisplayCondition: new Cesium.DistanceDisplayCondition(0, maxDistance),
    },
  };
}
